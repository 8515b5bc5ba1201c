"""What a code assertion may do: the RestrictedPython half of the sandbox (DESIGN §5).

Shared by the parent (`check_source`, which only compiles) and the worker (which also builds
the restricted namespace and runs `check`). The OS half (uid, rlimits, no network) lives in
`worker.py`; neither half is trusted to hold alone.
"""

from __future__ import annotations

import ast
import builtins as python_builtins
import collections
import importlib
import math
import operator
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from RestrictedPython import compile_restricted_exec, safe_builtins
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from RestrictedPython.Guards import raise_ as _RAISE
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer

ALLOWED_MODULES: tuple[str, ...] = (
    "re",
    "json",
    "math",
    "string",
    "difflib",
    "unicodedata",
    "statistics",
    "collections",
    "itertools",
    "datetime",
)

# Attributes of allowed modules that reopen what the allow-list closes: string.Formatter walks
# attributes by name ("{0.__class__}") without going through the guarded getattr.
DENIED_MODULE_ATTRIBUTES: Mapping[str, frozenset[str]] = {"string": frozenset({"Formatter"})}

ASSERTION_FILENAME = "<assertion>"
CHECK_FUNCTION = "check"
CHECK_PARAMETERS = ("output", "input", "reference", "meta")
# A code comparator (DESIGN §4.6) is called with two outputs of one input instead of one.
COMPARE_FUNCTION = "compare"
COMPARE_PARAMETERS = ("output_a", "output_b", "input", "reference", "meta")
# The functions a worker may be asked to call, with what they receive: a request naming any
# other is refused, so a request can never point the worker at another name in the namespace.
ENTRY_POINTS: Mapping[str, tuple[str, ...]] = {
    CHECK_FUNCTION: CHECK_PARAMETERS, COMPARE_FUNCTION: COMPARE_PARAMETERS,
}
COMPARISON_WINNERS = ("a", "b", "tie")

# Compiling is done in-process by `check_source`; a bound keeps a hostile source from making
# the web process spend long in the parser.
MAX_SOURCE_CHARS = 200_000
DETAIL_MAX_CHARS = 500

# Builtins beyond RestrictedPython's safe set that assertions need. RestrictedPython leaves out
# the ones that iterate in C because Zope's `_getiter_` enforces per-object permissions; here
# nothing is permission-guarded at iteration, so they open nothing.
_EXTRA_BUILTINS: dict[str, Any] = {
    name: getattr(python_builtins, name)
    for name in (
        "all", "any", "bytes", "dict", "enumerate", "filter", "frozenset", "iter", "list", "map",
        "max", "min", "next", "reversed", "set", "sorted", "sum", "tuple", "zip", "ascii",
    )
}
# The write guard lets an assertion's own classes take attribute writes; through setattr those
# writes could use underscore names ("__class__"), which the compiler refuses to see written.
_REMOVED_BUILTINS = ("setattr", "delattr")


def truncate_detail(detail: str, limit: int = DETAIL_MAX_CHARS) -> str:
    if len(detail) <= limit:
        return detail
    return detail[: limit - 1] + "…"


class _AssertionTransformer(RestrictingNodeTransformer):
    """RestrictedPython's rules, plus augmented assignment to items and attributes
    (`counts[word] += 1`, `self.total += n`), which ordinary validators use and RestrictedPython
    refuses outright. The write still goes through the write guard, so only the assertion's own
    lists, dicts and class instances can be changed; the read goes through the guarded getitem
    or getattr, as a plain read would."""

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if not isinstance(node.target, ast.Attribute | ast.Subscript):
            return super().visit_AugAssign(node)
        node = self.node_contents_visit(node)
        target = node.target
        write_guarded = target.value
        if not (isinstance(write_guarded, ast.Call) and len(write_guarded.args) == 1):
            # The parent visit reported an error (an underscore name, say) and left it as is.
            return node
        owner = write_guarded.args[0]
        operator_text = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
        if isinstance(target, ast.Attribute):
            call = ast.Call(
                func=ast.Name("_inplace_attribute_", ast.Load()),
                args=[owner, ast.Constant(target.attr), operator_text, node.value], keywords=[],
            )
        else:
            call = ast.Call(
                func=ast.Name("_inplace_item_", ast.Load()),
                args=[owner, target.slice, operator_text, node.value], keywords=[],
            )
        statement = ast.Expr(value=call)
        ast.copy_location(statement, node)
        ast.fix_missing_locations(statement)
        return statement


def _compile(source: str) -> tuple[types.CodeType | None, list[str]]:
    if len(source) > MAX_SOURCE_CHARS:
        return None, [f"the assertion is longer than {MAX_SOURCE_CHARS} characters"]
    try:
        result = compile_restricted_exec(
            source, filename=ASSERTION_FILENAME, policy=_AssertionTransformer
        )
    except (RecursionError, MemoryError):
        # CPython's parser reports pathological nesting this way rather than as a SyntaxError.
        return None, ["the assertion is nested too deeply to compile"]
    except (ValueError, SyntaxError) as exc:
        return None, [f"{type(exc).__name__}: {exc}"]
    return result.code, [_tidy_compile_error(str(error)) for error in result.errors]


def _tidy_compile_error(error: str) -> str:
    # RestrictedPython formats errors without a position as "Line None: ... statement: None".
    return error.removeprefix("Line None: ").removesuffix(" at statement: None")


def compile_assertion(source: str) -> tuple[types.CodeType | None, str]:
    """Restricted byte code, or None and one message joining every compile error."""
    code, errors = _compile(source)
    if errors or code is None:
        return None, truncate_detail("; ".join(errors) or "the assertion did not compile")
    return code, ""


def _static_problems(tree: ast.Module, function: str = CHECK_FUNCTION) -> list[str]:
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")]
        else:
            continue
        for name in names:
            if name not in ALLOWED_MODULES:
                problems.append(
                    f"Line {node.lineno}: import of '{name}' is not allowed "
                    f"(allowed: {', '.join(ALLOWED_MODULES)})"
                )
    checks = [
        node for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == function
    ]
    if not checks:
        problems.append(
            f"the assertion must define a function "
            f"{function}({', '.join(ENTRY_POINTS[function])})"
        )
    else:
        arity_problem = _arity_problem(checks[-1].args, function)
        if arity_problem:
            problems.append(f"Line {checks[-1].lineno}: {arity_problem}")
    return problems


def _arity_problem(arguments: ast.arguments, function: str = CHECK_FUNCTION) -> str:
    parameters = ENTRY_POINTS[function]
    positional = [*arguments.posonlyargs, *arguments.args]
    required = len(positional) - len(arguments.defaults)
    required_keyword_only = [
        arg.arg for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
        if default is None
    ]
    expected = f"{function}({', '.join(parameters)})"
    if len(positional) < len(parameters) and arguments.vararg is None:
        return f"{function} takes {len(positional)} arguments; it is called as {expected}"
    if required > len(parameters) or required_keyword_only:
        return f"{function} needs more arguments than {expected} provides"
    return ""


def check_source(source: str, function: str = CHECK_FUNCTION) -> list[str]:
    """Problems that stop the assertion from running, found without running any of it:
    compile errors, imports outside the allow-list, no `check` or a `check` that cannot take
    (output, input, reference, meta); with function="compare", the same for a comparator's
    `compare(output_a, output_b, input, reference, meta)`. An empty list means it will at
    least start."""
    if function not in ENTRY_POINTS:
        raise ValueError(f"unknown entry point {function!r}")
    code, errors = _compile(source)
    if errors or code is None:
        return errors or ["the assertion did not compile"]
    # The restricted compile succeeded, so the plain parse cannot fail.
    return _static_problems(ast.parse(source, filename=ASSERTION_FILENAME), function)


# --- the restricted namespace (worker side) -------------------------------------------------


def _module_proxy(name: str) -> types.ModuleType:
    """A copy of an allowed module holding only its public, non-module attributes. Handing out
    the real module would reach everything it imported: `statistics.sys.modules['os']`."""
    module = importlib.import_module(name)
    denied = DENIED_MODULE_ATTRIBUTES.get(name, frozenset())
    proxy = types.ModuleType(_proxy_name(name))
    for attribute in dir(module):
        if attribute.startswith("_") or attribute in denied:
            continue
        value = getattr(module, attribute)
        if isinstance(value, types.ModuleType):
            continue
        setattr(proxy, attribute, value)
    _name_missing_attributes(proxy, name)
    return proxy


def _name_missing_attributes(proxy: types.ModuleType, name: str) -> None:
    # The proxy's __name__ is not the module's (see _proxy_name); errors still read as
    # Python's own do, with the name the assertion imported.
    def missing(attribute: str) -> Any:
        raise AttributeError(f"module '{name}' has no attribute '{attribute}'")

    proxy.__getattr__ = missing  # type: ignore[method-assign]


# `from json import decoder` looks the attribute up on what __import__ returned and, when it
# is missing, falls back to sys.modules[proxy.__name__ + ".decoder"]: the real submodule. A name
# no real module has closes that door even if the fromlist check below were bypassed.
_PROXY_SUFFIX = " (sandbox copy)"


def _proxy_name(name: str) -> str:
    return f"{name}{_PROXY_SUFFIX}"


def load_allowed_modules() -> dict[str, types.ModuleType]:
    """Import every allowed module now: after the worker drops privileges the standard
    library (under /root here) is no longer readable, so nothing may be imported later."""
    return {name: _module_proxy(name) for name in ALLOWED_MODULES}


def _guarded_import_from(modules: Mapping[str, types.ModuleType]) -> Callable[..., Any]:
    def guarded_import(
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Iterable[str] | None = (),
        level: int = 0,
    ) -> types.ModuleType | None:
        if level != 0:
            raise ImportError("relative imports are not allowed")
        proxy = modules.get(name)
        if proxy is not None:
            for wanted in fromlist or ():
                if not isinstance(wanted, str) or not hasattr(proxy, wanted):
                    raise ImportError(f"cannot import name {wanted!r} from '{name}'")
            return proxy
        if isinstance(fromlist, list) and name in sys.modules:
            # C code inside an allowed module importing its helper (datetime.strptime needs
            # _strptime) goes through PyImport_Import, which passes a list as fromlist (an
            # import statement passes None or a tuple) and then reads sys.modules itself,
            # ignoring what is returned here. So the assertion is handed nothing.
            return None
        raise ImportError(f"import of '{name}' is not allowed")

    return guarded_import


_INPLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor, "@=": operator.imatmul,
}


def _inplace_var(op: str, target: Any, value: Any) -> Any:
    return _INPLACE_OPERATORS[op](target, value)


def _guarded_getitem(container: Any, key: Any) -> Any:
    return container[key]


# Containers an assertion builds (a Counter, a defaultdict, a deque) are its own to change;
# RestrictedPython's guard accepts exactly dict and list, refusing their subclasses.
_WRITABLE_CONTAINERS = (dict, list, set, bytearray, collections.deque)


def _write_guard(target: Any) -> Any:
    if isinstance(target, _WRITABLE_CONTAINERS) and not isinstance(target, type):
        return target
    return full_write_guard(target)


def _inplace_item(container: Any, key: Any, op: str, value: Any) -> None:
    _write_guard(container)[key] = _inplace_var(op, container[key], value)


def _inplace_attribute(owner: Any, name: str, op: str, value: Any) -> None:
    current = _guarded_getattr(owner, name)
    setattr(_write_guard(owner), name, _inplace_var(op, current, value))


def _apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


_NO_DEFAULT = object()


def _guarded_getattr_builtin(target: Any, name: str, default: Any = _NO_DEFAULT) -> Any:
    # safer_getattr's own default is None, which would turn a typo into a silent None.
    if default is _NO_DEFAULT:
        return safer_getattr(target, name, _RAISE)
    return safer_getattr(target, name, default)


def _guarded_getattr(target: Any, name: str) -> Any:
    return safer_getattr(target, name, _RAISE)


def _guarded_hasattr(target: Any, name: str) -> bool:
    try:
        safer_getattr(target, name, _RAISE)
    except AttributeError:
        return False
    return True


class _DiscardedPrint:
    """`print` inside an assertion goes nowhere: the worker's stdout is /dev/null and the
    protocol runs on other descriptors, so printing can neither leak nor corrupt a frame."""

    def __init__(self, _getattr_: Any = None) -> None:
        self._getattr_ = _getattr_

    def write(self, text: str) -> None:
        return None

    def __call__(self) -> str:
        return ""

    def _call_print(self, *objects: Any, **kwargs: Any) -> None:
        if kwargs.get("file") is not None:
            self._getattr_(kwargs["file"], "write")
        kwargs["file"] = self
        print(*objects, **kwargs)


class _AssertionClass(type):
    """Metaclass of classes an assertion defines: their instances accept attribute writes
    (RestrictedPython's write guard refuses writes to objects that do not opt in)."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
        namespace["_guarded_writes"] = True
        return super().__new__(mcs, name, bases, namespace)


def assertion_globals(modules: Mapping[str, types.ModuleType]) -> dict[str, Any]:
    """A fresh global namespace for one assertion source. Fresh per source so one assertion
    cannot leave anything behind for another sharing the worker."""
    builtins = dict(safe_builtins)
    for name in _REMOVED_BUILTINS:
        builtins.pop(name, None)
    builtins.update(_EXTRA_BUILTINS)
    builtins.update(
        getattr=_guarded_getattr_builtin,
        hasattr=_guarded_hasattr,
        __import__=_guarded_import_from(
            {name: _copy_proxy(proxy) for name, proxy in modules.items()}
        ),
    )
    return {
        "__builtins__": builtins,
        "__name__": "assertion",
        "__metaclass__": _AssertionClass,
        "_getattr_": _guarded_getattr,
        "_getitem_": _guarded_getitem,
        "_getiter_": iter,
        "_write_": _write_guard,
        "_inplacevar_": _inplace_var,
        "_inplace_item_": _inplace_item,
        "_inplace_attribute_": _inplace_attribute,
        "_apply_": _apply,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_print_": _DiscardedPrint,
    }


def _copy_proxy(proxy: types.ModuleType) -> types.ModuleType:
    copy = types.ModuleType(proxy.__name__)
    # __name__ is the proxy's own sandbox name; only the public attributes are copied.
    copy.__dict__.update(
        (key, value) for key, value in vars(proxy).items() if not key.startswith("__")
    )
    _name_missing_attributes(copy, proxy.__name__.removesuffix(_PROXY_SUFFIX))
    return copy


@dataclass(frozen=True)
class CheckValue:
    """What one call of `check` (or `compare`) produced, before the parent applies the
    threshold. kind is "bool", "number", "winner" (compare only), "none" or "error"; value is
    set for bool, number and winner."""

    kind: str
    value: bool | float | str | None
    detail: str


def classify_return(returned: Any) -> CheckValue:
    if returned is None:
        return CheckValue("none", None, "check returned None")
    if returned is True or returned is False:
        return CheckValue("bool", returned, "")
    if isinstance(returned, int | float) and not isinstance(returned, bool):
        try:
            number = float(returned)
        except OverflowError:
            return CheckValue("error", None, "check returned a number too large for a float")
        if math.isnan(number):
            return CheckValue("error", None, "check returned NaN")
        return CheckValue("number", number, "")
    return CheckValue(
        "error", None,
        f"check returned {type(returned).__name__}; expected bool, a number or None",
    )


def classify_comparison(returned: Any) -> CheckValue:
    """What one call of `compare` produced: kind "winner" ('a', 'b' or 'tie'), "number"
    (a − b: the sign names the winner), or "none"/"error"."""
    if isinstance(returned, str):
        winner = returned.strip().lower()
        if winner in COMPARISON_WINNERS:
            return CheckValue("winner", winner, "")
        return CheckValue("error", None,
                          f"compare returned {truncate_detail(repr(returned), 60)}; "
                          "expected 'a', 'b', 'tie' or a number")
    if returned is True or returned is False:
        return CheckValue("error", None,
                          "compare returned a bool; expected 'a', 'b', 'tie' or a number")
    if returned is None:
        return CheckValue("none", None, "compare returned None")
    value = classify_return(returned)
    if value.kind == "error":
        return CheckValue("error", None, value.detail.replace("check returned", "compare returned")
                          .replace("expected bool, a number or None",
                                   "expected 'a', 'b', 'tie' or a number"))
    return value


def describe_exception(exc: BaseException, memory_mb: int | None = None) -> str:
    """One line for a person: the exception and the line of the assertion it came from."""
    if isinstance(exc, MemoryError):
        limit = f" ({memory_mb} MB)" if memory_mb else ""
        return f"memory limit exceeded{limit}"
    try:
        message = str(exc)
    except Exception:  # a hostile __str__ must not take the worker down
        message = "<unprintable message>"
    message = message[: DETAIL_MAX_CHARS * 2]
    line = _assertion_line(exc)
    where = f" (line {line})" if line is not None else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return truncate_detail(text + where)


def _assertion_line(exc: BaseException) -> int | None:
    line = None
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == ASSERTION_FILENAME:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
