import pytest

# The shared helpers assert too: rewrite them like test modules, so their failures show the values.
pytest.register_assert_rewrite("tests.support", "tests.fault_support", "tests.fuzz_support")
