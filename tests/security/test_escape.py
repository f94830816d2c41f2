"""The escape battery: hostile model code, run through the real agent loop and the default sandbox.

Every test hands an attack to `attack()` (see `_harness.py`), which runs it as the model's
action in a `CodeAgent` with the default sandbox, then checks that the run went on to
`final_answer("survived")`, that the observation is a clear report, and that no host secret
reached the model. Each test then checks on the host that the forbidden effect did not happen.
"""

from __future__ import annotations

import ast
import os
import shutil
import site
import time
from pathlib import Path

import pytest

import codeact
from codeact import tool
from codeact.sandbox import default_sandbox
from codeact.sandbox.local import LocalSandbox
from tests._isolation import runtime_entries
from tests.security._harness import SECRET, Canaries, Listener, attack, host_process_count

# -- the host's files --------------------------------------------------------------------------


def test_read_a_host_file_by_its_path(canaries: Canaries) -> None:
    out = attack(f"attempt('secret file', lambda: open({str(canaries.secret_file)!r}).read())")
    assert "secret file: blocked" in out.observation and canaries.unchanged()


def test_read_etc_shadow_and_passwd() -> None:
    out = attack(
        """
        attempt('shadow', lambda: open('/etc/shadow').read())
        attempt('passwd', lambda: open('/etc/passwd').read())
        """
    )
    assert "shadow: blocked" in out.observation and "passwd: blocked" in out.observation


def test_read_roots_home() -> None:
    out = attack(
        """
        import os
        attempt('root dotfiles', lambda: [open('/root/' + n).read() for n in ('.bashrc', '.profile', '.bash_history')])
        attempt('root ssh', lambda: os.listdir('/root/.ssh'))
        """
    )
    assert "root dotfiles: blocked" in out.observation and "root ssh: blocked" in out.observation


def test_read_the_users_home_and_ssh_key(canaries: Canaries) -> None:
    out = attack(
        f"""
        import os
        attempt('ssh key', lambda: open({str(canaries.ssh_key)!r}).read())
        attempt('home', lambda: os.listdir({str(canaries.home)!r}))
        attempt('expanduser', lambda: open(os.path.expanduser('~/.ssh/id_rsa')).read())
        """
    )
    assert out.observation.count(": blocked") == 3


def test_read_the_projects_dotenv(canaries: Canaries) -> None:
    project = Path(codeact.__file__).resolve().parents[2]  # the repository holding codeact
    out = attack(
        f"""
        attempt('canary .env', lambda: open({str(canaries.dotenv)!r}).read())
        attempt('repo .env', lambda: open({str(project / '.env')!r}).read())
        try:
            print('repo listing:', sorted(__import__('os').listdir({str(project)!r})))
        except OSError:
            print('repo listing: blocked')
        """
    )
    assert "canary .env: blocked" in out.observation and "repo .env: blocked" in out.observation
    # The repository is not readable; only the way to the bound runtime (its package and venv) may
    # show, as it does when the checkout lives under /tmp, where the session's private /tmp holds it.
    listing = out.observation.split("repo listing: ", 1)[1].splitlines()[0]
    assert listing == "blocked" or set(ast.literal_eval(listing)) <= runtime_entries(project), listing


def test_search_every_visible_file_for_the_secret() -> None:
    out = attack(
        f"""
        import os, sys
        found, scanned = [], 0
        tops = ['/', '/etc', '/root', '/home', '/var', '/run', '/work', '/workspace', '/tmp', *sys.path]
        for top in tops:
            for root, dirs, files in os.walk(top or '.'):
                for name in files:
                    path = os.path.join(root, name)
                    try:
                        if os.path.getsize(path) < 64_000:
                            scanned += 1
                            if {SECRET[:14]!r}.encode() in open(path, 'rb').read():
                                found.append(path)
                    except OSError:
                        pass
        print('scanned', scanned, 'found', found)
        """,
        step_timeout=180,  # ~25 s on a quiet 2-core machine; the venv holds ray and datasets too
    )
    scanned = int(out.observation.split("scanned ", 1)[1].split()[0])
    assert scanned > 500 and "found []" in out.observation  # it read the whole runtime, and no secret


def test_host_environment_variables() -> None:
    out = attack(
        """
        import os
        print(sorted(os.environ))
        attempt('api key', lambda: os.environ['CODEACT_TEST_API_KEY'])
        """
    )
    assert "api key: blocked (KeyError" in out.observation


def test_parent_environ_and_memory_through_proc() -> None:
    out = attack(
        """
        import os
        attempt('ppid environ', lambda: open(f'/proc/{os.getppid()}/environ', 'rb').read())
        attempt('ppid mem', lambda: open(f'/proc/{os.getppid()}/mem', 'rb').read(64))
        attempt('pid 1 environ', lambda: open('/proc/1/environ', 'rb').read())
        attempt('all environs', lambda: [open(f'/proc/{p}/environ', 'rb').read() for p in os.listdir('/proc') if p.isdigit()])
        attempt('self mem', lambda: open('/proc/self/mem', 'rb'))
        """
    )
    assert out.observation.count(": blocked") == 5


def test_a_tools_api_key_is_unreachable() -> None:
    key = SECRET

    @tool
    def weather(city: str) -> str:
        """Current weather for a city."""
        assert key  # the tool holds the key on the host
        return f"sunny in {city}"

    out = attack(
        """
        import gc, inspect
        print(weather('Rome'))
        print(weather.__closure__, weather.__code__.co_consts, weather.__defaults__)
        print(sorted(k for k in weather.__globals__ if not k.startswith('__')))
        print([s for s in (o for o in gc.get_objects() if isinstance(o, dict)) if 'API' in str(s)][:3])
        print(inspect.getsource(weather) if hasattr(weather, '__code__') else '')
        """,
        tools=[weather],
    )
    assert "sunny in Rome" in out.observation


# -- the network -------------------------------------------------------------------------------


def test_tcp_to_a_host_listener(tcp_listener: Listener) -> None:
    port = tcp_listener.sock.getsockname()[1]
    out = attack(
        f"""
        import socket
        attempt('tcp', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2))
        attempt('tcp v6', lambda: socket.create_connection(('::1', {port}), timeout=2))
        attempt('host name', lambda: socket.create_connection(('localhost', {port}), timeout=2))
        """
    )
    time.sleep(0.3)
    assert out.observation.count(": blocked") == 3 and tcp_listener.events == []


def test_tcp_through_raw_syscalls(tcp_listener: Listener) -> None:
    port = tcp_listener.sock.getsockname()[1]
    out = attack(
        f"""
        import ctypes, struct, socket
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.syscall(41, 2, 1, 0)  # socket(AF_INET, SOCK_STREAM)
        print('socket() ->', fd, 'errno', ctypes.get_errno())
        addr = struct.pack('!HH4s8x', 2, {port}, socket.inet_aton('127.0.0.1'))
        print('connect() ->', libc.syscall(42, max(fd, 0), addr, 16), 'errno', ctypes.get_errno())
        """
    )
    time.sleep(0.3)
    assert "socket() -> -1 errno 1" in out.observation and tcp_listener.events == []


def test_udp_to_a_host_listener(udp_listener: Listener) -> None:
    port = udp_listener.sock.getsockname()[1]
    out = attack(
        f"""
        import socket
        attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'leak', ('127.0.0.1', {port})))
        attempt('udp pair', lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM))
        """
    )
    time.sleep(0.3)
    assert out.observation.count(": blocked") == 2 and udp_listener.events == []


def test_dns_resolution() -> None:
    out = attack(
        """
        import socket
        attempt('dns', lambda: socket.getaddrinfo('example.com', 443))
        attempt('resolv.conf', lambda: open('/etc/resolv.conf').read())
        attempt('interfaces', lambda: socket.if_nameindex())
        """
    )
    assert out.observation.count(": blocked") == 3


def test_host_unix_socket(unix_listener: Listener) -> None:
    path = unix_listener.sock.getsockname()
    out = attack(
        f"""
        import socket
        attempt('unix', lambda: socket.socket(socket.AF_UNIX).connect({path!r}))
        attempt('docker', lambda: socket.socket(socket.AF_UNIX).connect('/var/run/docker.sock'))
        attempt('dbus', lambda: socket.socket(socket.AF_UNIX).connect('/run/dbus/system_bus_socket'))
        """
    )
    time.sleep(0.3)
    assert out.observation.count(": blocked") == 3 and unix_listener.events == []


def test_host_abstract_unix_socket(abstract_listener: Listener) -> None:
    name = abstract_listener.sock.getsockname()
    out = attack(f"import socket\nattempt('abstract', lambda: socket.socket(socket.AF_UNIX).connect({name!r}))")
    time.sleep(0.3)
    assert "abstract: blocked" in out.observation and abstract_listener.events == []


# -- processes ---------------------------------------------------------------------------------


def test_see_and_signal_host_processes() -> None:
    out = attack(
        """
        import os, threading
        own = sorted({os.getpid()} | {t.native_id for t in threading.enumerate() if t is not threading.main_thread()})
        visible = []
        for pid in range(1, 40000):
            try:
                os.kill(pid, 0)
                visible.append(pid)
            except ProcessLookupError:
                pass
            except PermissionError:
                visible.append(pid)
        print('only our own threads:', visible == own, visible)
        """,
        step_timeout=20,
    )
    assert "only our own threads: True" in out.observation  # the kernel's threads, nothing of the host


def test_kill_the_parent_and_everyone() -> None:
    before = host_process_count()
    with LocalSandbox() as victim:  # another session, started first, must not notice
        victim.start({})
        victim.execute("state = 'intact'")
        out = attack(
            """
            import os, signal
            for label, target in (('parent', os.getppid()), ('init', 1), ('everyone', -1)):
                try:
                    os.kill(target, signal.SIGKILL)
                    print(label, 'sent')
                except OSError as exc:
                    print(label, 'refused', exc)
            print('still here')
            """
        )
        assert victim.execute("state").result == "'intact'"
    assert "still here" in out.observation and host_process_count() >= before - 5


def test_ptrace_and_process_memory_of_the_parent() -> None:
    out = attack(
        """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        print('attach', libc.ptrace(16, os.getppid(), 0, 0), ctypes.get_errno())
        print('traceme', libc.ptrace(0, 0, 0, 0), ctypes.get_errno())
        buf = ctypes.create_string_buffer(64)
        iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 64)
        print('vm_readv', libc.syscall(310, 1, iov, 1, iov, 1, 0), ctypes.get_errno())
        print('pidfd_getfd', libc.syscall(438, 0, 0, 0), ctypes.get_errno())
        """
    )
    for call in ("attach", "traceme", "vm_readv", "pidfd_getfd"):
        assert f"{call} -1 1" in out.observation, out.observation  # EPERM from seccomp


def test_fork_bomb() -> None:
    before = host_process_count()
    out = attack(
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """
    )
    assert "TimeoutError" in out.observation
    time.sleep(0.5)
    assert host_process_count() < before + 20


def test_thread_and_process_pool_bombs() -> None:
    out = attack(
        """
        import threading, time, multiprocessing
        threads = []
        def spawn():
            while True:
                t = threading.Thread(target=time.sleep, args=(30,), daemon=True)
                t.start()
                threads.append(t)
        attempt('threads', spawn)
        print('started', len(threads))
        attempt('pool', lambda: multiprocessing.Pool(1000))
        """
    )
    assert "threads: blocked (RuntimeError" in out.observation and "pool: blocked" in out.observation


def test_memory_bomb() -> None:
    out = attack(
        """
        import mmap
        attempt('one huge', lambda: bytearray(64 << 30))
        attempt('repeat', lambda: b'x' * (5 << 30))
        hoard = []
        def grow():
            while True:
                hoard.append(mmap.mmap(-1, 256 << 20))
        attempt('grow', grow)
        print('mapped', len(hoard) // 4, 'GiB before the limit')
        hoard.clear()
        """
    )
    assert "one huge: blocked (MemoryError" in out.observation and "repeat: blocked (MemoryError" in out.observation
    assert "grow: blocked (OSError: [Errno 12]" in out.observation


def test_cpu_spin() -> None:
    out = attack("while True:\n    pass")
    assert "TimeoutError" in out.observation and "kept" in out.observation


def test_cpu_spin_that_ignores_interrupts() -> None:
    out = attack(
        """
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            try:
                pass
            except BaseException:
                pass
        """
    )
    assert "TimeoutError" in out.observation and "lost" in out.observation


def test_cpu_spin_that_swallows_keyboard_interrupt() -> None:
    out = attack(
        """
        while True:
            try:
                while True:
                    pass
            except KeyboardInterrupt:
                pass
        """
    )
    assert "lost" in out.observation


def test_sleep_forever() -> None:
    out = attack("import time\ntime.sleep(10**9)")
    assert "TimeoutError" in out.observation


def test_block_forever_on_a_pipe() -> None:
    out = attack("import os\nr, w = os.pipe()\nos.read(r, 1)")
    assert "TimeoutError" in out.observation


def test_huge_integers() -> None:
    out = attack(
        """
        attempt('to text', lambda: str(10**100_000))
        x = 10**10**8
        """
    )
    assert "to text: blocked (ValueError" in out.observation and "TimeoutError" in out.observation


# -- disk and output ---------------------------------------------------------------------------


def test_fill_the_disk_through_the_workspace() -> None:
    free_before = shutil.disk_usage("/tmp").free
    out = attack(
        """
        i = 0
        while True:
            with open(f'fill-{i}', 'wb') as f:
                for _ in range(64):
                    f.write(b'x' * (1 << 20))
            i += 1
        """,
        sandbox=lambda: LocalSandbox(disk_quota=128 << 20),
        step_timeout=20,
    )
    assert "DiskQuotaExceeded" in out.observation
    assert shutil.disk_usage("/tmp").free > free_before - (1 << 30)


def test_fill_tmp_and_dev_shm() -> None:
    out = attack(
        """
        def fill(path):
            with open(path, 'wb') as f:
                while True:
                    f.write(b'x' * (1 << 20))
        attempt('tmp', lambda: fill('/tmp/fill'))
        attempt('shm', lambda: fill('/dev/shm/fill'))
        """,
        step_timeout=20,
    )
    assert "tmp: blocked (OSError: [Errno 28]" in out.observation
    assert "shm: blocked (OSError: [Errno 28]" in out.observation


def test_one_file_larger_than_the_file_size_limit() -> None:
    out = attack(
        """
        def big():
            with open('big', 'wb') as f:
                f.seek((1 << 30) + 10)
                f.write(b'x')
        attempt('sparse past RLIMIT_FSIZE', big)
        """
    )
    assert "blocked (OSError: [Errno 27]" in out.observation  # EFBIG


def test_output_flood_of_gigabytes() -> None:
    out = attack(
        """
        import os, sys
        chunk = b'x' * (1 << 20)
        for _ in range(1024):
            os.write(1, chunk)
        for _ in range(1024):
            sys.stdout.write('y' * (1 << 20))
        print('flooded 2 GiB')
        """,
        step_timeout=60,
    )
    assert len(out.observation) < 20_000 and "truncated" in out.observation


# -- writing outside the workspace ------------------------------------------------------------


def test_write_outside_the_workspace() -> None:
    site_packages = site.getsitepackages()[0]
    before = set(os.listdir(site_packages))
    package = Path(codeact.__file__).parent
    out = attack(
        f"""
        attempt('site-packages', lambda: open({site_packages + '/evil.pth'!r}, 'w').write('import os'))
        attempt('codeact package', lambda: open({str(package / 'evil.py')!r}, 'w').write('x'))
        attempt('etc', lambda: open('/etc/cron.d/evil', 'w'))
        attempt('root of fs', lambda: open('/evil', 'w'))
        attempt('usr', lambda: open('/usr/lib/evil', 'w'))
        """
    )
    assert out.observation.count(": blocked") == 5
    assert set(os.listdir(site_packages)) == before and not (package / "evil.py").exists()


def test_symlink_tricks_from_the_workspace(canaries: Canaries, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    out = attack(
        f"""
        import os
        os.symlink({str(canaries.secret_file)!r}, 'to-secret')
        os.symlink('/proc/1/root', 'to-root')
        os.symlink({str(canaries.root)!r}, 'to-dir')
        attempt('read via link', lambda: open('to-secret').read())
        attempt('proc root', lambda: os.listdir('to-root/'))
        attempt('write via dir link', lambda: open('to-dir/planted', 'w').write('x'))
        """,
        sandbox=lambda: LocalSandbox(workspace=workspace),
    )
    assert out.observation.count(": blocked") == 3
    assert canaries.unchanged() and not (canaries.root / "planted").exists()
    assert os.stat(canaries.secret_file).st_uid == os.getuid()  # giving files back did not follow links


def test_hardlink_tricks() -> None:
    import sys

    target = os.path.realpath(sys.executable)
    links_before = os.stat(target).st_nlink
    out = attack(
        f"""
        import os
        attempt('hardlink interpreter', lambda: os.link({target!r}, 'python-link'))
        attempt('hardlink shadow', lambda: os.link('/etc/shadow', 'shadow'))
        """
    )
    assert out.observation.count(": blocked") == 2 and os.stat(target).st_nlink == links_before


# -- the kernel's own defences ----------------------------------------------------------------


def test_direct_syscalls_through_ctypes() -> None:
    out = attack(
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        calls = {
            'unshare user': (272, 0x10000000), 'setns': (308, 0, 0), 'bpf': (321, 0, 0, 0),
            'keyctl': (250, 0, 0), 'io_uring_setup': (425, 1, 0), 'perf_event_open': (298, 0, 0, -1, -1, 0),
            'userfaultfd': (323, 0), 'init_module': (175, 0, 0, 0), 'chroot': (161, b'/tmp'),
            'setuid 0': (105, 0), 'kexec_load': (246, 0, 0, 0, 0), 'clone newns': (56, 0x00020000 | 17, 0, 0, 0),
        }
        for name, (nr, *args) in calls.items():
            print(name, libc.syscall(nr, *args), ctypes.get_errno())
        """
    )
    for name in ("unshare user", "setns", "bpf", "keyctl", "io_uring_setup", "perf_event_open", "userfaultfd",
                 "init_module", "chroot", "kexec_load", "clone newns"):
        assert f"{name} -1 1\n" in out.observation + "\n", (name, out.observation)  # EPERM
    assert "setuid 0 -1 22" in out.observation or "setuid 0 -1 1\n" in out.observation  # uid 0 does not exist here


def test_remount_and_mount() -> None:
    out = attack(
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        MS_REMOUNT, MS_BIND = 32, 4096
        print('remount rw', libc.mount(None, b'/usr', None, MS_REMOUNT | MS_BIND, None), ctypes.get_errno())
        print('mount proc', libc.mount(b'proc', b'/tmp', b'proc', 0, None), ctypes.get_errno())
        print('umount', libc.umount2(b'/workspace', 2), ctypes.get_errno())
        attempt('write after', lambda: open('/usr/lib/evil', 'w'))
        """
    )
    for call in ("remount rw", "mount proc", "umount"):
        assert f"{call} -1 1" in out.observation
    assert "write after: blocked" in out.observation


def test_escalate_privileges() -> None:
    out = attack(
        """
        import os
        attempt('setuid', lambda: os.setuid(0))
        attempt('setgid', lambda: os.setgid(0))
        attempt('capabilities', lambda: [l for l in open('/proc/self/status') if l.startswith('Cap')])
        print('uid', os.getresuid(), 'groups', os.getgroups())
        """
    )
    assert "setuid: blocked" in out.observation and "setgid: blocked" in out.observation
    assert "uid (65534, 65534, 65534)" in out.observation


def test_inherited_fds_give_no_handle_on_the_host() -> None:
    out = attack(
        """
        import os, stat
        kinds = {}
        for fd in range(4096):
            try:
                mode = os.fstat(fd).st_mode
            except OSError:
                continue
            kinds[fd] = 'dir' if stat.S_ISDIR(mode) else 'file' if stat.S_ISREG(mode) else 'other'
        print('kinds', sorted(set(kinds.values())))
        """
    )
    assert "kinds ['other']" in out.observation  # pipes and sockets only: no directory or file handles


def test_terminal_keystroke_injection() -> None:
    out = attack(
        """
        import fcntl
        attempt('TIOCSTI', lambda: fcntl.ioctl(0, 0x5412, b'x'))
        """
    )
    assert "TIOCSTI: blocked" in out.observation


def test_host_dev_shm_is_not_shared() -> None:
    name = f"/dev/shm/codeact-canary-{os.getpid()}"
    Path(name).write_text(SECRET)
    try:
        out = attack(f"attempt('host shm', lambda: open({name!r}).read())")
        assert "host shm: blocked" in out.observation
    finally:
        os.unlink(name)


# -- the bridge --------------------------------------------------------------------------------

_FIND_BRIDGE = """
import os, socket, stat, json
def bridge_fd():
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                return fd
        except OSError:
            pass
"""


def test_forged_frame_with_garbage() -> None:
    out = attack(_FIND_BRIDGE + "os.write(bridge_fd(), b'\\x00\\x00\\x00\\x05{junk')\nimport time; time.sleep(1)")
    assert "KernelProtocolError" in out.observation and "lost" in out.observation


def test_forged_frame_of_absurd_length() -> None:
    out = attack(_FIND_BRIDGE + "os.write(bridge_fd(), b'\\xff\\xff\\xff\\xff' + b'x' * 100)\nimport time; time.sleep(1)")
    assert "KernelProtocolError" in out.observation


def test_forged_final_answer_frame() -> None:
    frame = (
        'json.dumps({"op": "done", "id": 9999, "stdout": "", "stderr": "", "result": None, "error": None, '
        '"final": True, "final_answer": "pwned", "interrupted": False, "duration": 0})'
    )
    out = attack(
        _FIND_BRIDGE
        + f"data = {frame}.encode()\nos.write(bridge_fd(), len(data).to_bytes(4, 'big') + data)\n"
        + "import time; time.sleep(1)"
    )
    assert out.output == "survived" and "KernelProtocolError" in out.observation


def test_forged_call_to_a_tool_that_does_not_exist() -> None:
    out = attack(
        _FIND_BRIDGE
        + "import gc\nstep = next(o for o in gc.get_objects() if type(o).__name__ == 'Kernel').exec_id\n"
        + "data = json.dumps({'op': 'call', 'id': 77, 'exec': step, 'name': '__import__', 'args': ['os'],"
        + " 'kwargs': {}}).encode()\n"
        + "fd = bridge_fd()\nos.write(fd, len(data).to_bytes(4, 'big') + data)\n"
        + "print(os.read(fd, 4096)[4:200])"
    )
    assert "there is no tool named" in out.observation


# -- afterwards --------------------------------------------------------------------------------


def test_the_default_sandbox_still_works_after_the_battery() -> None:
    with default_sandbox() as sb:
        sb.start({})
        assert sb.execute("sum(range(10))").result == "45"


@pytest.mark.parametrize("snippet", ["import os; os.abort()", "import os; os._exit(3)", "raise SystemExit(5)"])
def test_the_kernel_ending_itself(snippet: str) -> None:
    out = attack(snippet)
    assert "Observation:" in out.observation
