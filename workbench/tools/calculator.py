"""`calculator`: arithmetic evaluated by walking the expression's `ast`, never with `eval`."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from workbench.core.schema import CalculatorTool
from workbench.tools.base import Tool, ToolArgs, ToolResult, at_most

# The pattern also constrains a local model's grammar, so it can only write arithmetic.
_EXPRESSION = r"^[0-9+*/%(). -]+$"

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculatorArgs(ToolArgs):
    expression: Annotated[str, at_most(200)] = Field(
        pattern=_EXPRESSION,
        description="an arithmetic expression with numbers, + - * / // % ** and parentheses, e.g. (3 + 4) * 5",
    )


def format_number(value: float | int) -> str:
    """An integral result without a trailing `.0`; others to 12 significant digits."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


class Calculator(Tool):
    name = "calculator"
    description = "Evaluates an arithmetic expression."
    args_model = CalculatorArgs
    config: CalculatorTool

    def __init__(self, config: CalculatorTool | None = None, context: Any = None) -> None:
        super().__init__(config or CalculatorTool(tool="calculator"), context)

    def evaluate(self, expression: str) -> float | int:
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError as exc:
            raise self.fail(f"not an arithmetic expression: {expression!r}") from exc
        try:
            value = self._eval(tree.body)
        except ZeroDivisionError as exc:
            raise self.fail(f"division by zero in {expression!r}") from exc
        except OverflowError as exc:
            raise self.fail(f"the result of {expression!r} is too large") from exc
        # Past ~1,000 bits an integer is no answer anyone reads, and its text can be refused.
        too_large = value.bit_length() > 1000 if isinstance(value, int) else not math.isfinite(value)
        if too_large:
            raise self.fail(f"the result of {expression!r} is too large")
        return value

    def _eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self._eval(node.left), self._eval(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > self.config.max_exponent:
                raise self.fail(f"exponent {format_number(right)} is over the limit of {self.config.max_exponent}")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self._eval(node.operand))
        raise self.fail(f"unsupported syntax: {ast.unparse(node)!r}")

    def run(self, args: CalculatorArgs) -> ToolResult:
        value = self.evaluate(args.expression)
        return ToolResult(value=value, text=format_number(value))
