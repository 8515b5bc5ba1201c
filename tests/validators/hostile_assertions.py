"""Code assertions that try to get out of the sandbox, each with the substring its `error`
verdict must carry. The test runs every one on a shared pool and then checks that a benign
assertion on the same pool still gets correct verdicts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostileAssertion:
    name: str
    source: str
    expected_detail: str


def _check(body: str, prelude: str = "") -> str:
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"{prelude}def check(output, input, reference, meta):\n{indented}\n"


UNDERSCORE_ATTRIBUTE = 'is an invalid attribute name because it starts with "_"'
NOT_DEFINED = "is not defined"

HOSTILE_ASSERTIONS: tuple[HostileAssertion, ...] = (
    # --- files and the environment ---
    HostileAssertion(
        "read_etc_passwd", _check("return 'root' in open('/etc/passwd').read()"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "read_etc_shadow", _check("return len(open('/etc/shadow').read()) > 0"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "write_file", _check("open('pwned.txt', 'w').write(output)\nreturn True"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "os_environ_at_module_level",
        _check("return 'SECRET_KEY' in ENV", prelude="import os\nENV = os.environ\n"),
        "ImportError: import of 'os' is not allowed (line 1)",
    ),
    # --- imports outside the allow-list ---
    HostileAssertion(
        "import_os_inside_check", _check("import os\nreturn os.getcwd() != ''"),
        "ImportError: import of 'os' is not allowed (line 2)",
    ),
    HostileAssertion(
        "import_subprocess", _check("import subprocess\nreturn subprocess.call(['id']) == 0"),
        "import of 'subprocess' is not allowed",
    ),
    HostileAssertion(
        "import_socket",
        _check("import socket\nsocket.create_connection(('127.0.0.1', 80))\nreturn True"),
        "import of 'socket' is not allowed",
    ),
    HostileAssertion(
        "import_ctypes", _check("import ctypes\nreturn ctypes.CDLL(None) is not None"),
        "import of 'ctypes' is not allowed",
    ),
    HostileAssertion(
        "import_importlib",
        _check("import importlib\nreturn importlib.import_module('os') is not None"),
        "import of 'importlib' is not allowed",
    ),
    HostileAssertion(
        "import_sys_for_stdout",
        _check("import sys\nsys.stdout.write('garbage')\nreturn True"),
        "import of 'sys' is not allowed",
    ),
    HostileAssertion(
        "import_submodule_of_allowed", _check("import json.decoder\nreturn True"),
        "import of 'json.decoder' is not allowed",
    ),
    HostileAssertion(
        "dunder_import", _check("return __import__('os').getcwd() != ''"),
        '"__import__" is an invalid variable name because it starts with "_"',
    ),
    HostileAssertion(
        "eval_string", _check("return eval(\"__import__('os')\") is not None"),
        "Eval calls are not allowed",
    ),
    # --- reaching modules the allowed modules imported ---
    HostileAssertion(
        "module_attribute_to_sys",
        _check("import statistics\nreturn statistics.sys.modules['os'].fork() >= 0"),
        "AttributeError: module 'statistics' has no attribute 'sys'",
    ),
    HostileAssertion(
        "module_attribute_to_codecs_open",
        _check("import json\nreturn json.codecs.open('/etc/passwd').read() != ''"),
        "AttributeError: module 'json' has no attribute 'codecs'",
    ),
    HostileAssertion(
        "monkeypatch_shared_module",
        _check("import json\njson.loads = lambda text: 'pwned'\nreturn True"),
        "TypeError: attribute-less object (assign or del)",
    ),
    # --- introspection escapes ---
    HostileAssertion(
        "subclasses_walk", _check("return len(().__class__.__bases__[0].__subclasses__()) > 0"),
        UNDERSCORE_ATTRIBUTE,
    ),
    HostileAssertion(
        "check_globals", _check("return '__builtins__' in check.__globals__"),
        UNDERSCORE_ATTRIBUTE,
    ),
    HostileAssertion(
        "getattr_underscore_name", _check("return getattr(output, '__class__') is str"),
        'AttributeError: "__class__" is an invalid attribute name because it starts with "_"',
    ),
    HostileAssertion(
        "getattr_globals_of_check", _check("return getattr(check, '__globals__') is not None"),
        'AttributeError: "__globals__" is an invalid attribute name',
    ),
    HostileAssertion(
        "sys_getframe", _check("import sys\nreturn sys._getframe(1).f_globals is not None"),
        UNDERSCORE_ATTRIBUTE,
    ),
    HostileAssertion(
        "traceback_frame_walk",
        _check(
            "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n"
            "    frame = exc.__traceback__.tb_frame.f_back\n"
            "    return frame.f_globals is not None"
        ),
        UNDERSCORE_ATTRIBUTE,
    ),
    HostileAssertion(
        "traceback_via_getattr",
        _check(
            "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n"
            "    return getattr(getattr(exc, '__traceback__'), 'tb_frame') is not None"
        ),
        'AttributeError: "__traceback__" is an invalid attribute name',
    ),
    HostileAssertion(
        "frame_f_back", _check("frame = meta.get('frame')\nreturn frame.f_back is not None"),
        '"f_back" is a restricted name, that is forbidden to access in RestrictedPython',
    ),
    HostileAssertion(
        "generator_frame_globals",
        _check(
            "generator = (x for x in [1])\n"
            "return generator.gi_frame.f_globals is not None"
        ),
        '"gi_frame" is a restricted name, that is forbidden to access in RestrictedPython',
    ),
    HostileAssertion(
        "generator_frame_via_getattr",
        _check(
            "generator = (x for x in [1])\n"
            "return getattr(generator, 'gi_frame') is not None"
        ),
        'AttributeError: "gi_frame" is a restricted name',
    ),
    HostileAssertion(
        "str_format_attribute_walk", _check("return '{0.__class__.__mro__}'.format(output) != ''"),
        "NotImplementedError: Using the format*() methods of `str` is not safe",
    ),
    HostileAssertion(
        "str_format_via_type", _check("return str.format('{0.__class__}', output) != ''"),
        "NotImplementedError: Using the format*() methods of `str` is not safe",
    ),
    HostileAssertion(
        "string_formatter",
        _check(
            "return string.Formatter().vformat('{0.__class__}', [output], {}) != ''",
            prelude="import string\n",
        ),
        "AttributeError: module 'string' has no attribute 'Formatter'",
    ),
    HostileAssertion(
        "string_formatter_from_import", _check("from string import Formatter\nreturn True"),
        "ImportError: cannot import name 'Formatter' from 'string'",
    ),
    HostileAssertion(
        "type_three_arguments",
        _check("Escape = type('Escape', (object,), {})\nreturn Escape is not None"),
        "NameError: name 'type' is not defined",
    ),
    HostileAssertion(
        "metaclass_keyword",
        _check("class Escape(metaclass=Meta):\n    pass\nreturn True",
               prelude="class Meta:\n    pass\n"),
        'The keyword argument "metaclass" is not allowed',
    ),
    HostileAssertion(
        "globals_builtin", _check("return globals() is not None"),
        "NameError: name 'globals' is not defined",
    ),
    HostileAssertion(
        "setattr_underscore",
        _check("setattr(check, '__code__', None)\nreturn True"),
        "NameError: name 'setattr' is not defined",
    ),
    # --- the pipe the runner talks on ---
    HostileAssertion(
        "open_stdout_descriptor", _check("open(1, 'w').write('\\x00\\x00\\x00\\x05junk')\nreturn True"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "open_stdin_descriptor", _check("open(0).close()\nreturn True"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "fork_through_os", _check("import os\nreturn os.fork() >= 0"),
        "import of 'os' is not allowed",
    ),
    # --- resources ---
    HostileAssertion(
        "infinite_loop", _check("while True:\n    pass"),
        "timed out after 1.0 s",
    ),
    HostileAssertion(
        "infinite_loop_at_module_level", "while True:\n    pass\n" + _check("return True"),
        "timed out after 1.0 s while loading the assertion",
    ),
    HostileAssertion(
        "memory_bomb_repeat", _check("return len('x' * 10**10) > 0"),
        "memory limit exceeded (256 MB)",
    ),
    HostileAssertion(
        "memory_bomb_doubling",
        _check("text = 'x' * 2 ** 20\nwhile True:\n    text = text + text"),
        "memory limit exceeded (256 MB)",
    ),
    HostileAssertion(
        "memory_bomb_list", _check("cells = [0] * (10**9)\nreturn len(cells) > 0"),
        "memory limit exceeded (256 MB)",
    ),
    HostileAssertion(
        "recursion_bomb", _check("return deeper(1)", prelude="def deeper(n):\n    return deeper(n + 1)\n"),
        "RecursionError: maximum recursion depth exceeded",
    ),
    HostileAssertion(
        "huge_string_returned", _check("return 'x' * (100 * 1024 * 1024)"),
        "check returned str; expected bool, a number or None",
    ),
    HostileAssertion(
        "huge_list_returned", _check("return [output] * (10**7)"),
        "check returned list; expected bool, a number or None",
    ),
    HostileAssertion(
        "huge_error_message", _check("raise ValueError('x' * (50 * 1024 * 1024))"),
        "ValueError: xxxxxxxx",
    ),
    HostileAssertion(
        "huge_integer_returned", _check("return 10**100000"),
        "check returned a number too large for a float",
    ),
    HostileAssertion(
        "system_exit", _check("raise SystemExit(0)"),
        "SystemExit: 0 (line 2)",
    ),

    # --- issue 11: an attacker's corpus, class by class (each also meets the OS wall) ---
    # submodule imports through from-import
    HostileAssertion(
        'from_json_import_decoder',
        _check("from json import decoder\nreturn decoder.re.enum.sys is not None"),
        "ImportError: cannot import name 'decoder' from 'json'",
    ),
    HostileAssertion(
        'from_json_import_scanner',
        _check("from json import scanner\nreturn scanner is not None"),
        "ImportError: cannot import name 'scanner' from 'json'",
    ),
    HostileAssertion(
        'from_re_import_enum',
        _check("from re import enum\nreturn enum.sys.modules['os'] is not None"),
        "ImportError: cannot import name 'enum' from 're'",
    ),
    HostileAssertion(
        'from_re_import_functools',
        _check("from re import functools\nreturn True"),
        "ImportError: cannot import name 'functools' from 're'",
    ),
    HostileAssertion(
        'from_re_import_parser',
        _check("from re import _parser\nreturn True"),
        'Line 2: "_parser" is an invalid variable name because it starts with "_"',
    ),
    HostileAssertion(
        'from_collections_import_abc',
        _check("from collections import abc\nreturn abc.sys is not None"),
        "ImportError: cannot import name 'abc' from 'collections'",
    ),
    HostileAssertion(
        'from_statistics_import_random',
        _check("from statistics import random\nreturn random.os is not None"),
        "ImportError: cannot import name 'random' from 'statistics'",
    ),
    HostileAssertion(
        'from_statistics_import_sys',
        _check("from statistics import sys\nreturn sys.modules is not None"),
        "ImportError: cannot import name 'sys' from 'statistics'",
    ),
    HostileAssertion(
        'from_difflib_import_heapq',
        _check("from difflib import heapq\nreturn True"),
        "ImportError: cannot import name 'heapq' from 'difflib'",
    ),
    HostileAssertion(
        'from_string_import_re',
        _check("from string import _re\nreturn True"),
        'Line 2: "_re" is an invalid variable name because it starts with "_"',
    ),
    HostileAssertion(
        'from_json_import_star',
        "from json import *\ndef check(output, input, reference, meta):\n    return True\n",
        'Line 1: "*" imports are not allowed.',
    ),
    HostileAssertion(
        'import_re_parser_dotted',
        _check("import re._parser\nreturn True"),
        "ImportError: import of 're._parser' is not allowed",
    ),
    HostileAssertion(
        'import_collections_abc_dotted',
        _check("import collections.abc\nreturn True"),
        "ImportError: import of 'collections.abc' is not allowed",
    ),
    HostileAssertion(
        'import_json_decoder_as',
        _check("import json.decoder as decoder\nreturn True"),
        "ImportError: import of 'json.decoder' is not allowed",
    ),
    HostileAssertion(
        'relative_import',
        _check("from . import settings\nreturn True"),
        'ImportError: relative imports are not allowed',
    ),
    # attribute chains to modules
    HostileAssertion(
        're_enum_chain',
        _check("import re\nreturn re.enum.sys.modules['os'].getcwd() != ''"),
        "AttributeError: module 're' has no attribute 'enum'",
    ),
    HostileAssertion(
        're_functools_chain',
        _check("import re\nreturn re.functools is not None"),
        "AttributeError: module 're' has no attribute 'functools'",
    ),
    HostileAssertion(
        're_copyreg_chain',
        _check("import re\nreturn re.copyreg is not None"),
        "AttributeError: module 're' has no attribute 'copyreg'",
    ),
    HostileAssertion(
        'json_decoder_attribute',
        _check("import json\nreturn json.decoder.re is not None"),
        "AttributeError: module 'json' has no attribute 'decoder'",
    ),
    HostileAssertion(
        'json_scanner_attribute',
        _check("import json\nreturn json.scanner is not None"),
        "AttributeError: module 'json' has no attribute 'scanner'",
    ),
    HostileAssertion(
        'collections_sys_attribute',
        _check("import collections\nreturn collections.sys.modules is not None"),
        "AttributeError: module 'collections' has no attribute 'sys'",
    ),
    HostileAssertion(
        'statistics_random_attribute',
        _check("import statistics\nreturn statistics.random.os is not None"),
        "AttributeError: module 'statistics' has no attribute 'random'",
    ),
    HostileAssertion(
        'statistics_math_attribute',
        _check("import statistics\nreturn statistics.math.pi > 3"),
        "AttributeError: module 'statistics' has no attribute 'math'",
    ),
    HostileAssertion(
        'difflib_heapq_attribute',
        _check("import difflib\nreturn difflib.heapq is not None"),
        "AttributeError: module 'difflib' has no attribute 'heapq'",
    ),
    HostileAssertion(
        'string_re_attribute',
        _check("import string\nreturn string._re is not None"),
        'Line 3: "_re" is an invalid attribute name because it starts with "_".',
    ),
    HostileAssertion(
        'datetime_sys_attribute',
        _check("import datetime\nreturn datetime.sys is not None"),
        "AttributeError: module 'datetime' has no attribute 'sys'",
    ),
    HostileAssertion(
        'function_globals_chain',
        _check("import json\nreturn json.loads.__globals__['codecs'] is not None"),
        'Line 3: "__globals__" is an invalid attribute name because it starts with "_".',
    ),
    HostileAssertion(
        'class_module_chain',
        _check("import json\nreturn json.JSONDecoder.__init__.__globals__ is not None"),
        'Line 3: "__globals__" is an invalid attribute name because it starts with "_".',
    ),
    HostileAssertion(
        'getattr_string_chain',
        _check("import re\nreturn getattr(re, 'enum') is not None"),
        "AttributeError: module 're' has no attribute 'enum'",
    ),
    HostileAssertion(
        'getattr_default_chain',
        _check("import re\nreturn getattr(re, 'enum', None).sys is not None"),
        "AttributeError: 'NoneType' object has no attribute 'sys'",
    ),
    HostileAssertion(
        'pattern_class_mro',
        _check("import re\nreturn re.compile('x').__class__.__mro__ is not None"),
        'Line 3: "__mro__" is an invalid attribute name because it starts with "_".',
    ),
    HostileAssertion(
        'exception_class_walk',
        _check("try:\n    1 / 0\nexcept Exception as exc:\n    return exc.__class__.__base__ is not None"),
        'Line 5: "__base__" is an invalid attribute name because it starts with "_".',
    ),
    HostileAssertion(
        'counter_class_walk',
        _check("import collections\nreturn getattr(collections.Counter, '__init__') is not None"),
        'AttributeError: "__init__" is an invalid attribute name because it starts with "_"',
    ),
    # builtins that open things
    HostileAssertion(
        'builtins_dict_open',
        _check("return __builtins__['open'] is not None"),
        'Line 2: "__builtins__" is an invalid variable name because it starts with "_"',
    ),
    HostileAssertion(
        'dir_builtin',
        _check("return len(dir()) > 0"),
        "NameError: name 'dir' is not defined",
    ),
    HostileAssertion(
        'vars_builtin',
        _check("return vars() is not None"),
        "NameError: name 'vars' is not defined",
    ),
    HostileAssertion(
        'locals_builtin',
        _check("return locals() is not None"),
        "NameError: name 'locals' is not defined",
    ),
    HostileAssertion(
        'exec_builtin',
        _check("exec('import os')\nreturn True"),
        'Line 2: Exec calls are not allowed.',
    ),
    HostileAssertion(
        'compile_builtin',
        _check("return compile('1', 'x', 'eval') is not None"),
        "NameError: name 'compile' is not defined",
    ),
    HostileAssertion(
        'input_builtin',
        _check("return input() != ''"),
        "TypeError: 'str' object is not callable",
    ),
    HostileAssertion(
        'breakpoint_builtin',
        _check("breakpoint()\nreturn True"),
        'Line 2: "breakpoint" is a reserved name.',
    ),
    HostileAssertion(
        'help_builtin',
        _check("help(output)\nreturn True"),
        "NameError: name 'help' is not defined",
    ),
    HostileAssertion(
        'memoryview_builtin',
        _check("return memoryview(b'x') is not None"),
        "NameError: name 'memoryview' is not defined",
    ),
    HostileAssertion(
        'object_subclasses_via_getattr',
        _check("return getattr(object, '__subclasses__')() is not None"),
        "NameError: name 'object' is not defined",
    ),
    HostileAssertion(
        'super_builtin',
        _check("return super() is not None"),
        "NameError: name 'super' is not defined",
    ),
    # files, /proc, other projects' data, the settings
    HostileAssertion(
        'read_proc_self_environ',
        _check("return 'SECRET' in open('/proc/self/environ').read()"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        'read_proc_1_cmdline',
        _check("return open('/proc/1/cmdline').read() != ''"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        'read_settings_module',
        _check("import config.settings\nreturn config.settings.SECRET_KEY != ''"),
        "ImportError: import of 'config.settings' is not allowed",
    ),
    HostileAssertion(
        'read_env_file',
        _check("return open('.env').read() != ''"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        'read_other_projects_export',
        _check("return open('var/media/exports/other-gold-1.csv').read() != ''"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        'import_django_settings',
        _check("from django.conf import settings\nreturn settings.SECRET_KEY != ''"),
        "ImportError: import of 'django.conf' is not allowed",
    ),
    HostileAssertion(
        'import_io_open',
        _check("import io\nreturn io.open('/etc/passwd').read() != ''"),
        "ImportError: import of 'io' is not allowed",
    ),
    HostileAssertion(
        'import_codecs_open',
        _check("import codecs\nreturn codecs.open('/etc/passwd').read() != ''"),
        "ImportError: import of 'codecs' is not allowed",
    ),
    HostileAssertion(
        'import_pathlib_read',
        _check("import pathlib\nreturn pathlib.Path('/etc/passwd').read_text() != ''"),
        "ImportError: import of 'pathlib' is not allowed",
    ),
    HostileAssertion(
        'import_glob_listing',
        _check("import glob\nreturn len(glob.glob('/var/media/*')) > 0"),
        "ImportError: import of 'glob' is not allowed",
    ),
    HostileAssertion(
        'import_linecache',
        _check("import linecache\nreturn linecache.getline('/etc/passwd', 1) != ''"),
        "ImportError: import of 'linecache' is not allowed",
    ),
    # writes anywhere
    HostileAssertion(
        'write_via_shutil',
        _check("import shutil\nshutil.copy('/etc/passwd', '/tmp/concord-pwned')\nreturn True"),
        "ImportError: import of 'shutil' is not allowed",
    ),
    HostileAssertion(
        'write_via_tempfile',
        _check("import tempfile\ntempfile.mkstemp(prefix='concord-pwned')\nreturn True"),
        "ImportError: import of 'tempfile' is not allowed",
    ),
    HostileAssertion(
        'write_via_pathlib',
        _check("import pathlib\npathlib.Path('/tmp/concord-pwned').write_text('x')\nreturn True"),
        "ImportError: import of 'pathlib' is not allowed",
    ),
    HostileAssertion(
        'write_via_json_dump',
        _check("import json\njson.dump({}, open('/tmp/concord-pwned', 'w'))\nreturn True"),
        "NameError: name 'open' is not defined",
    ),
    # sockets: TCP, UDP, Unix (PostgreSQL, Redis)
    HostileAssertion(
        'tcp_via_urllib',
        _check("import urllib.request\nurllib.request.urlopen('http://127.0.0.1:8000/')\nreturn True"),
        "ImportError: import of 'urllib.request' is not allowed",
    ),
    HostileAssertion(
        'tcp_via_http_client',
        _check("import http.client\nhttp.client.HTTPConnection('127.0.0.1', 5432).connect()\nreturn True"),
        "ImportError: import of 'http.client' is not allowed",
    ),
    HostileAssertion(
        'udp_via_socket',
        _check("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 53))\nreturn True"),
        "ImportError: import of 'socket' is not allowed",
    ),
    HostileAssertion(
        'unix_socket_postgres',
        _check("import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('/var/run/postgresql/.s.PGSQL.5432')\nreturn True"),
        "ImportError: import of 'socket' is not allowed",
    ),
    HostileAssertion(
        'unix_socket_redis',
        _check("import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('/var/run/redis/redis-server.sock')\nreturn True"),
        "ImportError: import of 'socket' is not allowed",
    ),
    HostileAssertion(
        'redis_client',
        _check("import redis\nreturn redis.Redis().ping()"),
        "ImportError: import of 'redis' is not allowed",
    ),
    HostileAssertion(
        'psycopg_client',
        _check("import psycopg\nreturn psycopg.connect('dbname=test') is not None"),
        "ImportError: import of 'psycopg' is not allowed",
    ),
    HostileAssertion(
        'asyncio_connection',
        _check("import asyncio\nreturn asyncio.open_connection('127.0.0.1', 6379) is not None"),
        "ImportError: import of 'asyncio' is not allowed",
    ),
    HostileAssertion(
        'ssl_module',
        _check("import ssl\nreturn ssl.create_default_context() is not None"),
        "ImportError: import of 'ssl' is not allowed",
    ),
    # processes and signals
    HostileAssertion(
        'multiprocessing_spawn',
        _check("import multiprocessing\nmultiprocessing.Process(target=print).start()\nreturn True"),
        "ImportError: import of 'multiprocessing' is not allowed",
    ),
    HostileAssertion(
        'pty_spawn',
        _check("import pty\npty.spawn('/bin/sh')\nreturn True"),
        "ImportError: import of 'pty' is not allowed",
    ),
    HostileAssertion(
        'os_system',
        _check("import os\nreturn os.system('id') == 0"),
        "ImportError: import of 'os' is not allowed",
    ),
    HostileAssertion(
        'os_execv',
        _check("import os\nos.execv('/bin/sh', ['sh'])\nreturn True"),
        "ImportError: import of 'os' is not allowed",
    ),
    HostileAssertion(
        'signal_parent',
        _check("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nreturn True"),
        "ImportError: import of 'os' is not allowed",
    ),
    HostileAssertion(
        'signal_module_alarm',
        _check("import signal\nsignal.alarm(1)\nreturn True"),
        "ImportError: import of 'signal' is not allowed",
    ),
    HostileAssertion(
        'resource_raise_limits',
        _check("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))\nreturn True"),
        "ImportError: import of 'resource' is not allowed",
    ),
    HostileAssertion(
        'threading_start',
        _check("import threading\nthreading.Thread(target=print).start()\nreturn True"),
        "ImportError: import of 'threading' is not allowed",
    ),
    HostileAssertion(
        'gc_referrers',
        _check("import gc\nreturn len(gc.get_objects()) > 0"),
        "ImportError: import of 'gc' is not allowed",
    ),
    HostileAssertion(
        'inspect_stack',
        _check("import inspect\nreturn inspect.stack()[1].frame.f_globals is not None"),
        'Line 3: "f_globals" is a restricted name, that is forbidden to access in RestrictedPython.',
    ),
    HostileAssertion(
        'builtins_module',
        _check("import builtins\nreturn builtins.open('/etc/passwd') is not None"),
        'Line 2: "builtins" is a reserved name.',
    ),
    HostileAssertion(
        'importlib_util',
        _check("from importlib import util\nreturn util is not None"),
        "ImportError: import of 'importlib' is not allowed",
    ),
    # tampering with what later runs use
    HostileAssertion(
        'tamper_counter_method',
        _check("import collections\ncollections.Counter.most_common = lambda self, n=None: []\nreturn True"),
        'TypeError: attribute-less object (assign or del)',
    ),
    HostileAssertion(
        'tamper_re_compile',
        _check("import re\nre.compile = None\nreturn True"),
        'TypeError: attribute-less object (assign or del)',
    ),
    HostileAssertion(
        'tamper_json_dumps_augmented',
        _check("import json\njson.dumps += 1\nreturn True"),
        "TypeError: unsupported operand type(s) for +=: 'function' and 'int'",
    ),
    HostileAssertion(
        'tamper_str_class',
        _check("output.upper = None\nreturn True"),
        'TypeError: attribute-less object (assign or del)',
    ),
    HostileAssertion(
        'tamper_list_append',
        _check("list.append = None\nreturn True"),
        'TypeError: attribute-less object (assign or del)',
    ),
    HostileAssertion(
        'tamper_dict_via_item',
        _check("import string\nstring.ascii_letters[0] = 'x'\nreturn True"),
        'TypeError: object does not support item or slice assignment',
    ),
    HostileAssertion(
        'tamper_datetime_class',
        _check("import datetime\ndatetime.datetime.now = None\nreturn True"),
        'TypeError: attribute-less object (assign or del)',
    ),
    HostileAssertion(
        'tamper_module_dict',
        _check("import json\njson.__dict__['loads'] = None\nreturn True"),
        'Line 3: "__dict__" is an invalid attribute name because it starts with "_".',
    ),
    # resource bombs
    HostileAssertion(
        'memory_string_bomb',
        _check("return len('x' * (10 ** 10)) > 0"),
        'memory limit exceeded (256 MB)',
    ),
    HostileAssertion(
        'memory_list_bomb',
        _check("return len([0] * (10 ** 10)) > 0"),
        'memory limit exceeded (256 MB)',
    ),
    HostileAssertion(
        'recursion_through_helper',
        "def go(n):\n    return go(n + 1)\n" + _check("return go(0) > 0"),
        'RecursionError: maximum recursion depth exceeded',
    ),
    HostileAssertion(
        'cpu_big_power',
        _check("return 10 ** (10 ** 9) > 0"),
        'timed out after 1.0 s',
    ),
    HostileAssertion(
        'regex_catastrophic_backtracking',
        _check("import re\nreturn re.match(r'(a+)+$', 'a' * 40 + 'b') is None"),
        'timed out after 1.0 s',
    ),
    HostileAssertion(
        'infinite_loop_in_check',
        _check("while True:\n    pass"),
        'timed out after 1.0 s',
    ),
    HostileAssertion(
        'huge_float_return',
        _check("return 10 ** 400"),
        'check returned a number too large for a float',
    ),
    HostileAssertion(
        'generator_bomb',
        _check("import itertools\nreturn len(list(itertools.repeat(0, 10 ** 10))) > 0"),
        'memory limit exceeded (256 MB)',
    ),
    # text that storage cannot hold
    HostileAssertion(
        'nul_in_exception_text',
        _check("raise ValueError('bad\\x00byte')"),
        'ValueError: bad',
    ),
    HostileAssertion(
        'lone_surrogate_in_exception_text',
        _check("raise ValueError('bad \\udc80 text')"),
        'ValueError: bad ',
    ),
    HostileAssertion(
        'nul_at_load_time',
        "raise ValueError('\\x00' * 10)\n" + _check("return True"),
        'ValueError: ',
    ),
    HostileAssertion(
        'unprintable_exception',
        "class Loud(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n" + _check("raise Loud()"),
        'Line 2: "__str__" is an invalid variable name because it starts with "_"',
    ),
    HostileAssertion(
        'system_exit_zero',
        _check("raise SystemExit(0)"),
        'SystemExit: 0',
    ),
    HostileAssertion(
        'keyboard_interrupt',
        _check("raise KeyboardInterrupt()"),
        'KeyboardInterrupt',
    ),
)
