# Copyright: (c) 2026, hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fan-out: run a module on many hosts from ONE task (private, controller side).

A workload kind is one task for the whole fleet: an action plugin with
``BYPASS_HOST_LOOP = True`` runs once, in one Ansible worker process, and
uses :class:`Fleet` to reach every host. ``Fleet`` opens each host's
connection the way ansible-core's ``TaskExecutor`` does (``_get_connection``,
``_set_become_plugin``, ``_set_connection_options``; the same steps as
``meta: reset_connection`` in ``plugins/strategy/__init__.py``): the host's
own variables from the VariableManager, a PlayContext per host, the
connection, become and shell plugins with their options resolved from those
variables, and the ``ansible.legacy.normal`` action as the carrier of
``_execute_module``. So every per-host inventory setting works (ansible_host,
port, user, key, password, become, interpreter, pipelining, connection).

Why fork: each round forks one child process per host (copy-on-write, a few
ms) that runs the module and sends the result back as JSON through a pipe;
all display happens in the parent. This is how Ansible itself isolates
hosts (forked workers). Threads are not an option on ansible-core 2.19+:
templating keeps per-thread state in context variables (copied contexts
fail with "Out-of-order context deactivation", new threads lose the task's
warnings), and avoiding that needs ``ansible._internal`` imports, which this
file never uses. Everything that can be computed once (host variables,
PlayContext, plugins and their options) is prepared in the parent and
inherited by the children, so a round costs a fork plus the module run.

Beyond the protected members action plugins use anyway (``_task``, ``_play_context``, ``_connection``,
``_execute_module``...), two private attributes, read defensively: ``VariableManager._inventory`` (host
patterns) and the worker's pristine ``PlayContext`` (the -k/-K passwords when the first host's vars hid them).

Differences handled here: 2.19 dropped ``new_stdin`` (passed by keyword) and treats ``omit`` as unset; 2.19+
return warnings/exceptions as summary objects (made plain text); 2.21 moves module warnings straight into the
task's warning context (read back from the module's raw output) and overwrites ``task.connection`` with the
first host's plugin before the action runs.

What users must know about such a task (Ansible semantics, not ours): task
keywords are templated once with the first host's vars; ``register`` lands
on the first host unless ``run_once: true``; the free strategy refuses it;
``serial`` limits it to the current batch.
"""

from __future__ import annotations

import ctypes
import gc
import json
import multiprocessing
import os
import selectors
import signal
import time
import typing as t
import warnings
from collections import deque
from collections.abc import Mapping

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleValueOmittedError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.json_utils import _filter_non_json_lines
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar
from ansible.utils.display import Display

if t.TYPE_CHECKING:  # pragma: no cover
    from ansible.plugins.action import ActionBase

display = Display()

__all__ = ["Fleet", "FleetResult"]

FleetResult = dict[str, t.Any]
"""One host's result: the module's result dict in plain JSON types, or ``{"unreachable": True, "msg": ...}``
or ``{"failed": True, "msg": ...}``; ``warnings`` (list of str) and ``deprecations`` (list of dict) when any."""

# magic vars that describe the play, computed correctly by the strategy for the first host only
_PLAY_MAGIC = ("ansible_play_hosts", "ansible_play_hosts_all", "ansible_play_batch", "play_hosts")
# dropped from module results: echoes the (possibly large) arguments back through the pipe
_DROP_KEYS = ("invocation", "_ansible_no_log", "_ansible_parsed", "_ansible_delegated_vars")
_READ_SIZE = 1 << 16
# prctl(2) option: the signal this process gets when its parent dies (Linux)
_PR_SET_PDEATHSIG = 1
# Longest wait in a round between two checks that the run (the worker's parent) is still alive, where prctl is missing
_PARENT_POLL = 1.0


class Fleet:
    """Connections to a set of inventory hosts, opened the way Ansible's executor opens them.

    Usage, inside an action plugin whose class sets ``BYPASS_HOST_LOOP = True``::

        def run(self, tmp=None, task_vars=None):
            fleet = Fleet(self, task_vars, Fleet.select(self, task_vars, self._task.args.get("hosts")))
            try:
                labels = {h: fleet.host_vars(h).get("hostfleet_node_labels", {}) for h in fleet.hosts}
                results = fleet.run_module("hostfleet.workloads.pod", {h: {...} for h in fleet.hosts})
                fleet.emit_warnings(results)
            finally:
                fleet.close()

    Preparation (variables, plugins, options) happens once per host, on first use;
    each :meth:`run_module` call is one round: one forked child per host, in parallel.
    """

    # The ansible-playbook process this worker must die with, and whether Linux signals its death (else polled).
    _run_pid: int | None = None
    _parent_signal = False

    def __init__(self, action: ActionBase, task_vars: dict[str, t.Any], hosts: list[str] | None = None, forks: int | None = None) -> None:
        """``hosts`` defaults to the play's current batch (``ansible_play_batch``); names must be inventory hosts.
        ``forks`` caps how many hosts run at once (default: all)."""
        self._action = action
        self._task = action._task
        self._loader = action._loader
        self._plugins = action._shared_loader_obj
        self._task_vars = task_vars
        self._play = self._task.get_play()
        self._vm = self._task.get_variable_manager()
        self._inventory = _inventory(action)
        self._forks = forks if forks and forks > 0 else None
        if hosts is None:
            hosts = list(task_vars.get("ansible_play_batch") or [task_vars["inventory_hostname"]])
        unknown = [h for h in hosts if not isinstance(h, str) or self._inventory.get_host(h) is None]
        if unknown:
            raise AnsibleError(f"Not inventory hosts: {', '.join(map(str, unknown))}")
        self.hosts: list[str] = list(dict.fromkeys(hosts))
        self._prepared: dict[str, _Prepared] = {}
        self._base_pc: PlayContext | None = None
        self._default_connection: str | None = None
        # A run killed with SIGKILL must stop acting: this worker dies with ansible-playbook (see _die_with_parent).
        self._run_pid, self._parent_signal = _die_with_parent()

    # -- selection and inventory data -------------------------------------------------------------

    @staticmethod
    def select(action: ActionBase, task_vars: dict[str, t.Any], pattern: str | list[str] | None) -> list[str]:
        """Hosts of the play's current batch that match an inventory ``pattern`` ("web:&gpu", "all:!node3", a list), in play order."""
        batch = list(task_vars.get("ansible_play_batch") or [task_vars["inventory_hostname"]])
        if not pattern:
            return batch
        matched = {h.name for h in _inventory(action).get_hosts(pattern)}
        return [h for h in batch if h in matched]

    def host_vars(self, host: str) -> Mapping[str, t.Any]:
        """The host's own variables (inventory, facts, play, task), templated on access, as plain JSON types.

        A variable that templates to ``omit`` reads as unset."""
        return self._prepare(host, connect=False).vars_view

    def groups_of(self, host: str) -> list[str]:
        """Sorted names of the groups the host belongs to (like ``group_names``: without ``all``)."""
        return sorted(g.name for g in self._host(host).get_groups() if g.name != "all")

    # -- running ----------------------------------------------------------------------------------

    def run_module(
        self,
        module_name: str,
        args_per_host: Mapping[str, Mapping[str, t.Any]],
        check_mode: bool | None = None,
        timeout: float | None = None,
    ) -> dict[str, FleetResult]:
        """Run ``module_name`` (FQCN, e.g. ``ansible.builtin.command``, ``hostfleet.workloads.pod``) on every host of
        ``args_per_host`` at once, each with its own arguments. Returns ``{host: result}`` in fleet order.

        Modules only, not action plugins (``ansible.builtin.shell`` is one: use ``ansible.builtin.command`` with
        ``argv: [sh, -c, ...]``). ``ansible_facts`` in results are returned, not stored as facts.
        ``check_mode`` None: the task's (``--check``/``check_mode:``). ``timeout`` (seconds, whole round): hosts
        without a result by then are killed locally and reported ``{"failed": True, "timedout": True}`` (the remote
        process may still finish, as with Ansible's task ``timeout``)."""
        unknown = [h for h in args_per_host if h not in self.hosts]
        if unknown:
            raise AnsibleError(f"Not in this fleet: {', '.join(map(str, unknown))}")
        _stop_if_orphaned(self._run_pid)
        results: dict[str, FleetResult] = {}
        jobs: list[tuple[str, _Prepared, Mapping[str, t.Any]]] = []
        for host in self.hosts:
            if host not in args_per_host:
                continue
            prep = self._prepare(host, connect=True)
            if prep.error is not None:
                results[host] = {"failed": True, "msg": prep.error}
            else:
                jobs.append((host, prep, args_per_host[host]))
        if jobs:
            results.update(self._fan_out(jobs, module_name, check_mode, timeout))
        for host, _prep, _args in jobs:
            self._absorb(host, results[host])
        return {h: results[h] for h in self.hosts if h in results}

    def emit_warnings(self, results: Mapping[str, FleetResult]) -> None:
        """Display the ``warnings`` and ``deprecations`` of ``results`` (from the hosts' modules and plugins), prefixed by host."""
        for host, result in results.items():
            for msg in result.get("warnings") or ():
                display.warning(f"{host}: {msg}")
            for dep in result.get("deprecations") or ():
                display.deprecated(f"{host}: {dep.get('msg')}", version=dep.get("version"), date=dep.get("date"), collection_name=dep.get("collection_name"))

    def close(self) -> None:
        """Forget prepared hosts. Connections live only in the per-round children (SSH multiplexing, if configured,
        keeps its ControlPersist master as Ansible always does)."""
        self._prepared.clear()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- per-host preparation (parent, once per host) --------------------------------------------

    def _host(self, name: str) -> t.Any:
        host = self._inventory.get_host(name)
        if host is None:
            raise AnsibleError(f"Not an inventory host: {name}")
        return host

    def _prepare(self, name: str, connect: bool) -> _Prepared:
        prep = self._prepared.get(name)
        if prep is None:
            host = self._host(name)
            hvars = self._vm.get_vars(play=self._play, host=host, task=self._task)
            for key in _PLAY_MAGIC:
                if key in self._task_vars:
                    hvars[key] = self._task_vars[key]
            prep = self._prepared[name] = _Prepared(host, hvars, Templar(loader=self._loader, variables=hvars))
        if connect and prep.handler is None and prep.error is None:
            try:
                self._connect(prep)
            except Exception as ex:  # pylint: disable=broad-exception-caught  # one host's bad settings must not sink the others
                prep.error = f"Cannot set up the connection to {name}: {_exc_text(ex)}"
        return prep

    def _connect(self, prep: _Prepared) -> None:
        """Mirror ``TaskExecutor._execute_internal`` → ``_get_connection`` → ``_set_connection_options`` for one host."""
        task, cvars, templar = self._task, prep.vars, prep.templar
        pc = self._base_play_context().set_task_and_variable_override(task=task, variables=cvars, templar=templar)
        pc.post_validate(templar=templar)
        if not pc.remote_addr:
            pc.remote_addr = prep.host.address

        conn_name = _var(templar, cvars, "ansible_connection") or self._connection_keyword(templar)
        pc.connection = conn_name
        connection = self._plugins.connection_loader.get(
            conn_name, pc, new_stdin=None, task_uuid=getattr(task, "_uuid", None), ansible_playbook_pid=to_text(os.getppid())
        )
        if not connection:
            raise AnsibleError(f"the connection plugin '{conn_name}' was not found")

        # _set_become_plugin
        become = _var(templar, cvars, "ansible_become")
        become_plugin = None
        if boolean(become) if become is not None else task.become:
            method = _var(templar, cvars, "ansible_become_method") or task.become_method
            become_plugin = self._plugins.become_loader.get(method)
            if not become_plugin:
                raise AnsibleError(f"Invalid become method specified, could not find matching plugin: '{method}'.")
        connection.set_become_plugin(become_plugin)
        if become_plugin:
            if getattr(connection.become, "require_tty", False) and not getattr(connection, "has_tty", False):
                raise AnsibleError(f"The '{connection._load_name}' connection does not provide a TTY which is required by become '{become_plugin.name}'.")
            pc.set_become_plugin(become_plugin.name)
        pc.set_attributes_from_plugin(connection)

        # _set_connection_options
        task_keys = task.dump_attrs()
        task_keys["timeout"] = pc.timeout
        if pc.password:
            task_keys["password"] = pc.password
        task_keys.pop("retries", None)
        connection.set_options(task_keys=task_keys, var_options=connection._resolve_option_variables(cvars, templar))
        _set_plugin_options(connection._shell, "shell", cvars, templar, task_keys)
        if connection.become is not None:
            if pc.become_pass:
                task_keys["become_pass"] = pc.become_pass
            _set_plugin_options(connection.become, "become", cvars, templar, task_keys)
            for option in ("become_user", "become_flags", "become_exe", "become_pass"):
                try:
                    setattr(pc, option, connection.become.get_option(option))
                except KeyError:
                    pass
            pc.prompt = connection.become.prompt

        mvars = dict(cvars)
        connection.update_vars(mvars)
        mtemplar = Templar(loader=self._loader, variables=mvars)
        prep.module_vars = mvars
        prep.handler = self._plugins.action_loader.get(
            "ansible.legacy.normal",
            task=task,
            connection=connection,
            play_context=pc,
            loader=self._loader,
            templar=mtemplar,
            shared_loader_obj=self._plugins,
            collection_list=None,
        )
        if prep.handler is None:  # pragma: no cover
            raise AnsibleError("the action plugin 'ansible.legacy.normal' was not found")

    def _connection_keyword(self, templar: Templar) -> str:
        """The task's ``connection`` keyword. 2.21 overwrites ``task.connection`` with the FIRST host's resolved plugin
        before the action runs, so when that host sets ``ansible_connection`` fall back to the play's keyword."""
        if self._default_connection is None:
            if self._task_vars.get("ansible_connection") is None:
                value = self._task.connection
            else:
                value = self._play.connection
            self._default_connection = value or C.DEFAULT_TRANSPORT
        return templar.template(self._default_connection)

    def _base_play_context(self) -> PlayContext:
        """A PlayContext as the TaskQueueManager builds it (play + CLI passwords), before any host's vars.

        The action's own PlayContext already carries the FIRST host's vars (its ansible_password, become password,
        port...), so it must not be the base for the others: only the CLI (-k/-K) passwords are taken from it."""
        if self._base_pc is None:
            conn_pass, become_pass = _cli_passwords(self._action, self._task_vars)
            self._base_pc = PlayContext(
                play=self._play,
                passwords={"conn_pass": conn_pass, "become_pass": become_pass},
                connection_lockfd=self._action._play_context.connection_lockfd,
            )
        return self._base_pc

    def _absorb(self, host: str, result: FleetResult) -> None:
        """Keep a discovered interpreter for the next rounds (saves a discovery round trip per host per round)."""
        facts = result.get("ansible_facts")
        prep = self._prepared.get(host)
        if not isinstance(facts, dict) or prep is None or prep.module_vars is None:
            return
        found = {k: v for k, v in facts.items() if k.startswith("discovered_interpreter_")}
        if found:
            known = prep.module_vars.get("ansible_facts")
            prep.module_vars["ansible_facts"] = {**(known if isinstance(known, Mapping) else {}), **found}

    # -- the round: one forked child per host -----------------------------------------------------

    def _fan_out(self, jobs: list[tuple[str, _Prepared, Mapping[str, t.Any]]], module_name: str,
                 check_mode: bool | None, timeout: float | None) -> dict[str, FleetResult]:
        results: dict[str, FleetResult] = {}
        pending = deque(jobs)
        running: dict[int, tuple[str, int, bytearray]] = {}  # read fd -> (host, pid, data)
        limit = self._forks or len(jobs)
        deadline = None if timeout is None else time.monotonic() + timeout
        # Without prctl, the parent is polled: never block longer than _PARENT_POLL between two looks.
        poll = _PARENT_POLL if self._run_pid is not None and not self._parent_signal else None
        worker = os.getpid()
        sel = selectors.DefaultSelector()
        try:
            while pending or running:
                while pending and len(running) < limit:
                    host, prep, args = pending.popleft()
                    rfd, wfd = os.pipe()
                    with warnings.catch_warnings():
                        # Python 3.12+ warns about fork() in a process with threads (the worker's queue feeder thread);
                        # the child never touches that queue or any lock it may hold.
                        warnings.simplefilter("ignore", DeprecationWarning)
                        pid = os.fork()
                    if pid == 0:  # pragma: no cover (child)
                        os.close(rfd)
                        _child(wfd, host, prep, module_name, args, check_mode, worker)
                    os.close(wfd)
                    running[rfd] = (host, pid, bytearray())
                    sel.register(rfd, selectors.EVENT_READ)
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if poll is not None:
                    wait = poll if wait is None else min(wait, poll)
                ready = sel.select(wait)
                _stop_if_orphaned(self._run_pid)
                if not ready and deadline is not None and time.monotonic() >= deadline:
                    for host, _pid, _data in running.values():
                        results[host] = {"failed": True, "timedout": True, "msg": f"No result from {host} within {timeout} s."}
                    for host, _prep, _args in pending:
                        results[host] = {"failed": True, "timedout": True, "msg": f"Not started on {host} within {timeout} s."}
                    pending.clear()
                    break
                for key, _events in ready:
                    fd = key.fd
                    chunk = os.read(fd, _READ_SIZE)
                    if chunk:
                        running[fd][2].extend(chunk)
                        continue
                    sel.unregister(fd)
                    os.close(fd)
                    host, pid, data = running.pop(fd)
                    results[host] = _decode(host, data, _reap(pid))
        finally:
            for fd, (_host, pid, _data) in running.items():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _reap(pid)
                sel.unregister(fd)
                os.close(fd)
            sel.close()
        return results


class _Prepared:
    """What the parent computes once per host and every child inherits."""

    __slots__ = ("host", "vars", "templar", "vars_view", "module_vars", "handler", "error")

    def __init__(self, host: t.Any, hvars: dict[str, t.Any], templar: Templar) -> None:
        self.host = host
        self.vars = hvars
        self.templar = templar
        self.vars_view = _TemplatedVars(hvars, templar)
        self.module_vars: dict[str, t.Any] | None = None
        self.handler: ActionBase | None = None
        self.error: str | None = None


class _TemplatedVars(Mapping):
    """Read-only view of a host's variables, each templated on first access and converted to plain types."""

    def __init__(self, raw: Mapping[str, t.Any], templar: Templar) -> None:
        self._raw = raw
        self._templar = templar
        self._cache: dict[str, t.Any] = {}

    def __getitem__(self, key: str) -> t.Any:
        if key not in self._cache:
            value = self._raw[key]
            try:
                self._cache[key] = _plain(self._templar.template(value))
            except AnsibleValueOmittedError:
                raise KeyError(key) from None
        return self._cache[key]

    def __iter__(self) -> t.Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


# -- helpers -------------------------------------------------------------------------------------


def _inventory(action: ActionBase) -> t.Any:
    inventory = getattr(action._task.get_variable_manager(), "_inventory", None)
    if inventory is None:  # pragma: no cover
        raise AnsibleError("hostfleet fan-out: the inventory is not reachable from this task")
    return inventory


def _var(templar: Templar, cvars: Mapping[str, t.Any], name: str) -> t.Any:
    """A host var, templated; None when unset or ``omit``."""
    if cvars.get(name) is None:
        return None
    try:
        return templar.template(cvars[name])
    except AnsibleValueOmittedError:
        return None


def _set_plugin_options(plugin: t.Any, plugin_type: str, cvars: Mapping[str, t.Any], templar: Templar, task_keys: dict[str, t.Any]) -> None:
    """``TaskExecutor._set_plugin_options``: the plugin's documented vars from this host (omit = unset)."""
    options = {}
    for name in C.config.get_plugin_vars(plugin_type, plugin._load_name):
        if name in cvars:
            try:
                options[name] = templar.template(cvars[name])
            except AnsibleValueOmittedError:
                pass
    plugin.set_options(task_keys=task_keys, var_options=options)


def _cli_passwords(action: ActionBase, first_vars: Mapping[str, t.Any]) -> tuple[str | None, str | None]:
    """The -k/-K (or --*-password-file) passwords, never a host's own.

    They sit on the action's PlayContext, but only when the first host's vars did not replace them there. When
    they did: the worker's pristine PlayContext (the one the strategy handed to the worker, before any host's vars),
    else the password file of the command line, read again."""
    pc = action._play_context
    cli = context.CLIARGS

    def pick(own: bool, first_value: str | None, attr: str, file_option: str) -> str | None:
        if not own:
            return first_value or None
        pristine = getattr(multiprocessing.current_process(), "_play_context", None)
        if isinstance(pristine, PlayContext):
            return getattr(pristine, attr) or None
        if cli.get(file_option):
            from ansible.cli import CLI  # only here: importing ansible.cli costs time

            try:
                return to_text(CLI.get_password_from_file(cli[file_option])) or None
            except AnsibleError as ex:
                display.warning(f"hostfleet fan-out: cannot read {file_option} again: {_exc_text(ex)}")
        return None

    conn_vars = set(C.MAGIC_VARIABLE_MAPPING["password"]) | _option_vars("connection", action._connection, "password")
    become_vars = set(C.MAGIC_VARIABLE_MAPPING["become_pass"]) | _option_vars("become", getattr(action._connection, "become", None), "become_pass")
    return (
        pick(any(v in first_vars for v in conn_vars), pc.password, "password", "connection_password_file"),
        pick(any(v in first_vars for v in become_vars), pc.become_pass, "become_pass", "become_password_file"),
    )


def _option_vars(plugin_type: str, plugin: t.Any, option: str) -> set[str]:
    name = getattr(plugin, "_load_name", None)
    if not name:
        return set()
    definition = C.config.get_configuration_definitions(plugin_type, name).get(option) or {}
    return {entry["name"] for entry in definition.get("vars") or () if isinstance(entry, Mapping) and "name" in entry}


def _child(wfd: int, host: str, prep: _Prepared, module_name: str, args: Mapping[str, t.Any], check_mode: bool | None, worker: int) -> t.NoReturn:
    """Forked child: run the module, write one JSON document to ``wfd``, exit. Never returns into the parent's stack.

    It dies with ``worker`` (its parent): the death signal is not inherited through fork, and a worker killed with
    SIGKILL has no handler to take its children along."""
    status = 70
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if _set_parent_death_signal(signal.SIGKILL) and os.getppid() != worker:
            os._exit(status)  # the worker died before the signal was armed
        gc.disable()  # short-lived: avoid touching (and so copying) the parent's pages
        _forget_parent_warnings()
        capture = _Capture()
        capture.install()
        wire: list[t.Any] = []
        try:
            result = _run_module(prep, module_name, args, check_mode, wire)
        except AnsibleConnectionFailure as ex:
            result = {"unreachable": True, "msg": _exc_text(ex)}
        except Exception as ex:  # pylint: disable=broad-exception-caught
            result = {"failed": True, "msg": f"{type(ex).__name__}: {_exc_text(ex)}"}
        payload = {"result": _finish(result, capture, _wire_messages(wire)), "display": capture.events}
        _write_all(wfd, json.dumps(payload, default=_json_default).encode())
        status = 0
    except BaseException:  # pylint: disable=broad-exception-caught
        try:
            _write_all(wfd, json.dumps({"result": {"failed": True, "msg": f"fan-out child for {host} crashed"}}).encode())
        except BaseException:  # pylint: disable=broad-exception-caught
            pass
    finally:
        os._exit(status)


def _set_parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies (prctl PR_SET_PDEATHSIG). False where unavailable."""
    if os.uname().sysname != "Linux":
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc symbols in this process, or no prctl in them
        return False


def _die_with_parent() -> tuple[int | None, bool]:
    """In an Ansible worker: make this process die when ansible-playbook does. Returns (the run's pid or None, whether
    Linux signals its death; else the caller polls with :func:`_stop_if_orphaned`).

    Killed with SIGKILL, ansible-playbook cannot tell its workers; a worker orphaned mid-task went on orchestrating
    (re-parented to PID 1) until its rollout ended, next to any re-run. SIGTERM is what ansible-playbook itself sends
    its workers on a signal: the worker's handler (``WorkerProcess._term``) kills its process group, the fan-out
    children with it, and exits. Linux sends the death signal when the parent THREAD that forked us exits: ansible's
    strategy forks workers from ansible-playbook's main thread, whose end is the end of the run.

    Not in a worker (no multiprocessing parent, e.g. a test calling the plugin in-process): nothing to watch."""
    parent = multiprocessing.parent_process()
    if parent is None or not parent.pid:
        return None, False
    armed = _set_parent_death_signal(signal.SIGTERM)
    _stop_if_orphaned(parent.pid)  # the parent may have died before the signal was armed
    return parent.pid, armed


def _stop_if_orphaned(run_pid: int | None) -> None:
    """Terminate this worker the way ansible-playbook would (SIGTERM) when the run that forked it is gone."""
    if run_pid is not None and os.getppid() != run_pid:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler exits; if none (not an Ansible worker), SIGTERM's default did
        os._exit(1)


def _forget_parent_warnings() -> None:
    """Empty this child's copy of the task's warning context (2.21): fork copied in what the parent had displayed.

    Left there, every child returned the parent's warnings with its own result, the parent displayed them again
    per host, and the next round's children inherited those too: the count multiplied each round.
    """
    try:
        from ansible._internal._display_utils import DeferredWarningContext  # pylint: disable=import-outside-toplevel
    except ImportError:  # 2.19 has no such context
        return
    context = DeferredWarningContext.current(optional=True)
    for name in ("_warnings", "_deprecation_warnings", "_seen"):
        held = getattr(context, name, None)
        if held is not None and hasattr(held, "clear"):
            held.clear()


def _run_module(prep: _Prepared, module_name: str, args: Mapping[str, t.Any], check_mode: bool | None, wire: list[t.Any]) -> dict[str, t.Any]:
    handler = t.cast(t.Any, prep.handler)
    if check_mode is not None:
        handler._task.check_mode = bool(check_mode)  # this child's copy of the task only
    connection = handler._connection
    low_level = handler._low_level_execute_command

    def spy(*args: t.Any, **kwargs: t.Any) -> t.Any:
        res = low_level(*args, **kwargs)
        wire.append(res)
        return res

    # 2.21 moves module warnings straight into the task's warning context (this child's copy of it, lost on exit):
    # keep the module's raw output to read them back (the module's run is the last low-level command).
    handler._low_level_execute_command = spy
    try:
        return handler._execute_module(module_name=module_name, module_args=dict(args), task_vars=prep.module_vars)
    finally:
        del wire[:-1]
        handler._low_level_execute_command = low_level
        try:
            if connection._shell.tmpdir:  # no pipelining: the module was copied into a remote tmpdir
                handler._remove_tmp_path(connection._shell.tmpdir)
        except Exception:  # pylint: disable=broad-exception-caught
            pass
        try:
            connection.close()
        except Exception:  # pylint: disable=broad-exception-caught
            pass


class _Capture:
    """In the child: record what plugins display, to be replayed (display) or returned (warnings) by the parent."""

    def __init__(self) -> None:
        self.events: list[list[t.Any]] = []
        self.warnings: list[str] = []
        self.deprecations: list[dict[str, t.Any]] = []

    def install(self) -> None:
        # Instance attributes shadow the Display singleton's methods in this process only; every proxied
        # (queue-bound) internal method is reached only through one of these public ones.
        display.display = self._display
        display.verbose = self._verbose
        display.debug = self._debug
        display.warning = self._warning
        display.deprecated = self._deprecated
        display.error = self._error
        display.error_as_warning = self._error_as_warning
        display.system_warning = self._system_warning
        display.banner = self._display

    def _display(self, msg: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        kept = {k: v for k, v in kwargs.items() if k in ("color", "stderr", "screen_only", "log_only", "newline") and _is_scalar(v)}
        self.events.append(["display", to_text(msg), kept])

    def _verbose(self, msg: t.Any, host: str | None = None, caplevel: int = 2) -> None:
        if display.verbosity > caplevel or display.log_verbosity > caplevel:
            self.events.append(["verbose", to_text(msg), {"host": None if host is None else to_text(host), "caplevel": caplevel}])

    def _debug(self, msg: t.Any, host: str | None = None) -> None:
        if C.DEFAULT_DEBUG:
            self.events.append(["debug", to_text(msg), {"host": None if host is None else to_text(host)}])

    def _warning(self, msg: t.Any, *args: t.Any, help_text: str | None = None, **kwargs: t.Any) -> None:
        self.warnings.append(to_text(msg) + (f" {help_text}" if help_text else ""))

    def _deprecated(self, msg: t.Any, version: str | None = None, removed: bool = False, date: str | None = None, collection_name: str | None = None,
                    *args: t.Any, deprecator: t.Any = None, **kwargs: t.Any) -> None:
        self.deprecations.append(_deprecation({"msg": msg, "version": version, "date": date, "collection_name": collection_name, "deprecator": deprecator}))

    def _error(self, msg: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        self.events.append(["error", _exc_text(msg) if isinstance(msg, BaseException) else to_text(msg), {}])

    def _error_as_warning(self, msg: t.Any, exception: BaseException | None = None, *args: t.Any, **kwargs: t.Any) -> None:
        self.warnings.append(" ".join(x for x in (to_text(msg) if msg else "", _exc_text(exception) if exception else "") if x))

    def _system_warning(self, msg: t.Any) -> None:
        if C.SYSTEM_WARNINGS:
            self._warning(msg)


def _replay(events: list[list[t.Any]]) -> None:
    for kind, msg, kwargs in events:
        if kind == "verbose":
            display.verbose(msg, host=kwargs.get("host"), caplevel=kwargs.get("caplevel", 2))
        elif kind == "debug":
            display.debug(msg, host=kwargs.get("host"))
        elif kind == "error":
            display.error(msg)
        else:
            display.display(msg, **kwargs)


def _finish(result: Mapping[str, t.Any], capture: _Capture, wire: tuple[list[t.Any], list[t.Any]]) -> dict[str, t.Any]:
    """The module result in plain JSON types, with warnings/deprecations (module's + captured) as text, deduplicated."""
    out = {k: v for k, v in result.items() if k not in ("warnings", "deprecations", "exception") and k not in _DROP_KEYS}
    out = _plain(out)
    if "exception" in result:
        out["exception"] = _summary_text(result["exception"], traceback=True)
    if out.get("failed") and not out.get("msg"):
        # 2.19+ may report an unhandled module exception by its summary alone
        out["msg"] = _summary_text(result["exception"]) if "exception" in result else "The module failed without a message."
    warns = [_summary_text(w) for w in [*(result.get("warnings") or ()), *wire[0]]] + capture.warnings
    deps = [_deprecation(d) for d in [*(result.get("deprecations") or ()), *wire[1]]] + capture.deprecations
    if warns:
        out["warnings"] = list(dict.fromkeys(warns))
    if deps:
        out["deprecations"] = [dict(d) for d in dict.fromkeys(tuple(sorted(d.items(), key=str)) for d in deps)]
    return out


def _wire_messages(wire: list[t.Any]) -> tuple[list[t.Any], list[t.Any]]:
    """``warnings`` and ``deprecations`` from the module's raw JSON output (plain dicts/str on the wire)."""
    if not wire or not isinstance(wire[-1], Mapping):
        return [], []
    try:
        data, _junk = _filter_non_json_lines(to_text(wire[-1].get("stdout", "")), objects_only=True)
        doc = json.loads(data)
    except Exception:  # pylint: disable=broad-exception-caught
        return [], []
    if not isinstance(doc, Mapping):
        return [], []
    warns, deps = doc.get("warnings"), doc.get("deprecations")
    return (list(warns) if isinstance(warns, list) else []), (list(deps) if isinstance(deps, list) else [])


def _decode(host: str, data: bytes | bytearray, status: int) -> FleetResult:
    try:
        payload = json.loads(bytes(data))
        result = payload["result"]
    except (ValueError, KeyError, TypeError):
        return {"failed": True, "msg": f"fan-out child for {host} ended with status {status} and no result"}
    _replay(payload.get("display") or [])
    return result


def _reap(pid: int) -> int:
    while True:
        try:
            _pid, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            return -1
        except InterruptedError:  # pragma: no cover
            continue


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.close(fd)


def _is_scalar(value: t.Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _exc_text(ex: t.Any) -> str:
    text = to_text(ex)
    return text or type(ex).__name__


def _summary_text(value: t.Any, traceback: bool = False) -> str:
    """Text of a 2.19+ summary object (WarningSummary, ErrorSummary...) or of a plain str/dict message."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Mapping):
        if not isinstance(value.get("event"), Mapping):
            return to_text(value.get("msg", value))
        value = _AttrView(value)
    event = getattr(value, "event", None)
    if event is None:
        return to_text(value)
    if traceback and getattr(event, "formatted_traceback", None):
        return to_text(event.formatted_traceback)
    parts = []
    while event is not None:
        parts.append(to_text(getattr(event, "msg", "")))
        if getattr(event, "help_text", None):
            parts.append(to_text(event.help_text))
        chain = getattr(event, "chain", None)
        event = getattr(chain, "event", None) if chain is not None else None
    return ": ".join(p for p in parts if p)


class _AttrView:
    """Attribute access over a wire-format summary dict ({"event": {"msg": ..., "chain": {...}}, ...})."""

    def __init__(self, data: Mapping[str, t.Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> t.Any:
        value = self._data.get(name)
        return _AttrView(value) if isinstance(value, Mapping) else value


def _deprecation(value: t.Any) -> dict[str, t.Any]:
    """{"msg", "version", "date", "collection_name"} of a deprecation: a summary object, its wire dict, or a legacy dict."""
    view = _AttrView(value) if isinstance(value, Mapping) else value
    msg = _summary_text(value) if getattr(view, "event", None) is not None else to_text(getattr(view, "msg", None) or "")
    collection = getattr(view, "collection_name", None) or getattr(getattr(view, "deprecator", None), "resolved_name", None)
    return {"msg": msg, "version": _plain(getattr(view, "version", None)), "date": _plain(getattr(view, "date", None)), "collection_name": _plain(collection)}


def _plain(value: t.Any) -> t.Any:
    """Deep copy into plain JSON types: drops 2.19+ data tags, lazy containers and summary objects."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {(str.__str__(k) if isinstance(k, str) else to_text(_plain(k))): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if getattr(value, "event", None) is not None:
        return _summary_text(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return to_text(value)


def _json_default(value: t.Any) -> t.Any:
    return _plain(value)
