import pytest

from workbench.core.errors import ToolError
from workbench.core.schema import CalculatorTool
from workbench.tools.calculator import Calculator


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("12 * 7", "84"),
        ("(3 + 4) * 5", "35"),
        ("100 / 8", "12.5"),
        ("7 // 2", "3"),
        ("7 % 4", "3"),
        ("-2 ** 3", "-8"),
        ("2 ** -1", "0.5"),
        ("1 / 3", "0.333333333333"),
        ("0.1 + 0.2", "0.3"),
        ("10 / 2", "5"),
    ],
)
def test_arithmetic(expression: str, text: str) -> None:
    calc = Calculator()
    assert calc.run(calc.parse(f'{{"expression": "{expression}"}}')).text == text


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("2 ** 100000", "exponent 100000 is over the limit of 1000"),
        ("999 ** 999", "too large"),
        ("1e308 * 10", "too large"),
        ("3 +", "not an arithmetic expression"),
        ("(1, 2)", "unsupported syntax"),
        ("1 < 2", "unsupported syntax"),
    ],
)
def test_failures_are_tool_errors(expression: str, reason: str) -> None:
    calc = Calculator()
    with pytest.raises(ToolError, match=reason) as err:
        calc.evaluate(expression)
    assert err.value.tool == "calculator"


@pytest.mark.parametrize(
    "arguments",
    [
        "{\"expression\": \"__import__('os').system('id')\"}",  # names are outside the pattern
        '{"expression": "2 + 2", "extra": 1}',
        '{"expr": "2 + 2"}',
        '{"expression": ""}',
        "not json",
    ],
)
def test_arguments_are_validated_before_the_call(arguments: str) -> None:
    with pytest.raises(ToolError, match="calculator: (invalid arguments|the model's arguments are not JSON)"):
        Calculator().parse(arguments)


def test_code_is_never_evaluated() -> None:
    # Past the argument pattern (a caller may skip `parse`), the walker still refuses names and calls.
    with pytest.raises(ToolError, match="unsupported syntax"):
        Calculator().evaluate("(1).__class__")
    with pytest.raises(ToolError, match="unsupported syntax"):
        Calculator().evaluate("abs(-1)")


def test_the_schema_constrains_the_model_to_arithmetic() -> None:
    schema = Calculator.json_schema()
    assert schema["required"] == ["expression"] and schema["additionalProperties"] is False
    assert set(schema["properties"]["expression"]["pattern"]) <= set("^[0-9+*/%(). -]$")


def test_the_exponent_limit_is_configurable() -> None:
    calc = Calculator(CalculatorTool(tool="calculator", max_exponent=10))
    assert calc.evaluate("2 ** 10") == 1024
    with pytest.raises(ToolError, match="over the limit of 10"):
        calc.evaluate("2 ** 11")
