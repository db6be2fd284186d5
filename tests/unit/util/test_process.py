import os
import socket
import subprocess
import sys

from reconciler.util.process import holder_is_dead, holder_name, process_alive


def test_holder_name_is_this_host_and_pid():
    assert holder_name() == f"{socket.gethostname()}:{os.getpid()}"


def test_a_finished_process_on_this_host_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid)
    assert holder_is_dead(f"{socket.gethostname()}:{child.pid}")


def test_this_process_is_alive_and_never_dead():
    assert process_alive(os.getpid())
    assert not holder_is_dead(holder_name())


def test_a_holder_on_another_host_or_unparsable_is_never_presumed_dead():
    assert not holder_is_dead("some-other-host:1")
    assert not holder_is_dead("garbage")
    assert not holder_is_dead(None)
