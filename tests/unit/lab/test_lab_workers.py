"""tests/lab/workers.py: which lab instance (and lab dir) each pytest-xdist worker of the integration suite uses."""

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lab.workers import WorkerLabError, default_lab_dir, worker_lab  # noqa: E402


def test_not_a_worker_changes_nothing():
    assert worker_lab({"HOSTFLEET_LAB_INSTANCE": "6", "HOSTFLEET_LAB_DIR": "/x"}) == {}


def test_base_instance_plus_worker_index():
    env = {"HOSTFLEET_LAB_INSTANCE": "6", "HOSTFLEET_LAB_DIR": "/var/tmp/hostfleet-lab6"}
    assert worker_lab({**env, "PYTEST_XDIST_WORKER": "gw0"}) == {"HOSTFLEET_LAB_INSTANCE": "6", "HOSTFLEET_LAB_DIR": "/var/tmp/hostfleet-lab6"}
    assert worker_lab({**env, "PYTEST_XDIST_WORKER": "gw1"}) == {"HOSTFLEET_LAB_INSTANCE": "7", "HOSTFLEET_LAB_DIR": "/var/tmp/hostfleet-lab7"}


def test_explicit_list_wins_over_the_base():
    env = {"HOSTFLEET_LAB_INSTANCES": "6, 9", "HOSTFLEET_LAB_INSTANCE": "0", "PYTEST_XDIST_WORKER": "gw1"}
    assert worker_lab(env) == {"HOSTFLEET_LAB_INSTANCE": "9", "HOSTFLEET_LAB_DIR": "/var/tmp/hostfleet-lab9"}


def test_default_instance_keeps_its_short_names():
    assert worker_lab({"PYTEST_XDIST_WORKER": "gw0"}) == {"HOSTFLEET_LAB_INSTANCE": "0", "HOSTFLEET_LAB_DIR": "/var/tmp/hostfleet-lab"}
    assert worker_lab({"PYTEST_XDIST_WORKER": "gw1"})["HOSTFLEET_LAB_DIR"] == "/var/tmp/hostfleet-lab1"


def test_a_users_own_lab_dir_stays_with_the_base_instance_only():
    env = {"HOSTFLEET_LAB_INSTANCE": "3", "HOSTFLEET_LAB_DIR": "/srv/mylab"}
    assert worker_lab({**env, "PYTEST_XDIST_WORKER": "gw0"})["HOSTFLEET_LAB_DIR"] == "/srv/mylab"
    assert worker_lab({**env, "PYTEST_XDIST_WORKER": "gw1"})["HOSTFLEET_LAB_DIR"] == "/var/tmp/hostfleet-lab4"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PYTEST_XDIST_WORKER": "gw2", "HOSTFLEET_LAB_INSTANCES": "6,7"}, "HOSTFLEET_LAB_INSTANCES"),
        ({"PYTEST_XDIST_WORKER": "gw0", "HOSTFLEET_LAB_INSTANCES": "6,6"}, "twice"),
        ({"PYTEST_XDIST_WORKER": "gw0", "HOSTFLEET_LAB_INSTANCES": "6,x"}, "HOSTFLEET_LAB_INSTANCES"),
        ({"PYTEST_XDIST_WORKER": "gw0", "HOSTFLEET_LAB_INSTANCE": "255"}, "HOSTFLEET_LAB_INSTANCE"),
        ({"PYTEST_XDIST_WORKER": "gw1", "HOSTFLEET_LAB_INSTANCE": "254"}, "beyond 254"),
        ({"PYTEST_XDIST_WORKER": "master"}, "PYTEST_XDIST_WORKER"),
    ],
)
def test_no_usable_instance_is_an_error_naming_the_variable(env, words):
    with pytest.raises(WorkerLabError, match=words):
        worker_lab(env)


@given(base=st.integers(0, 200), workers=st.integers(1, 50), given_dir=st.sampled_from(["", "/srv/mylab"]))
def test_workers_of_one_run_never_share_an_instance_or_a_lab_dir(base, workers, given_dir):
    env = {"HOSTFLEET_LAB_INSTANCE": str(base), "HOSTFLEET_LAB_DIR": given_dir}
    labs = [worker_lab({**env, "PYTEST_XDIST_WORKER": f"gw{i}"}) for i in range(workers)]
    assert len({lab["HOSTFLEET_LAB_INSTANCE"] for lab in labs}) == workers
    assert len({lab["HOSTFLEET_LAB_DIR"] for lab in labs}) == workers
    assert labs[0]["HOSTFLEET_LAB_INSTANCE"] == str(base)  # worker 0 keeps the lab scripts/test locked


@given(instances=st.lists(st.integers(0, 254), min_size=1, max_size=20, unique=True), data=st.data())
def test_each_worker_gets_its_listed_instance_in_its_default_dir(instances, data):
    index = data.draw(st.integers(0, len(instances) - 1))
    env = {"HOSTFLEET_LAB_INSTANCES": ",".join(map(str, instances)), "PYTEST_XDIST_WORKER": f"gw{index}"}
    assert worker_lab(env) == {"HOSTFLEET_LAB_INSTANCE": str(instances[index]), "HOSTFLEET_LAB_DIR": default_lab_dir(instances[index])}
