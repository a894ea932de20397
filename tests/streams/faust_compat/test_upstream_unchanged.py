"""The upstream code the fences in streams/faust_compat/ patch, wrap or rely on privately is the code
they were written against: each function's source, hashed, as faust-streaming FAUST_VERSION ships it.
A new Faust version (or a patched one) fails here, naming the function whose fix must be re-checked.

The hashes are taken in a fresh interpreter, where no fix is installed yet (``apply_fixes`` replaces
some of these functions). Also: the worker refuses any other Faust version."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import NamedTuple

import faust
import pytest

from shouwang.settings import REPO_ROOT
from streams.faust_compat import FAUST_VERSION, FaustVersionError, check_version

RECORDED_FOR = "0.15.3"  # the faust-streaming version whose sources the hashes below are of

FETCH_LOOP = "fetch_loop.py (the consumer's fetch loop)"
TABLE_WRITES = "table_writes.py (the state writer's table, store and producer)"
MEMORY_STORE = "memory_store.py (the store that reads its changelog back)"
OFFSETS = "offsets.py (the committed offsets of the lag gauge)"
PRODUCER = "producer.py (acks=all and idempotence)"
RECOVERY_SEEK = "recovery_seek.py (standby partitions assigned during a recovery)"


class Relied(NamedTuple):
    fence: str  # the module of streams/faust_compat/ that relies on the function
    why: str
    sha256: str  # of inspect.getsource(function), as RECORDED_FOR ships it


# upstream function (module:qualified name) → the fence relying on it, how, and the sha256 of its source
UPSTREAM: dict[str, Relied] = {
    "faust.transport.consumer:Consumer._drain_messages": Relied(
        FETCH_LOOP, "replaced by a copy", "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
    ),
    "faust.transport.consumer:Consumer.perform_seek": Relied(
        FETCH_LOOP,
        "wrapped: a seek starts an epoch",
        "0e8c130ff4b0afd82c0be9c5fd831316e10febc62c94032833911096e156d7c6",
    ),
    "faust.transport.consumer:Consumer.seek": Relied(
        FETCH_LOOP,
        "wrapped: a seek starts an epoch",
        "b86a9fe05f956b30cf299c787b6787c6e0349cbf1ae556f2456a1e97b15dbb22",
    ),
    "faust.transport.consumer:Consumer._add_gap": Relied(
        FETCH_LOOP, "called by the copy", "4df2573ded7c1c2cde04dc6bde6d4480cb5875ef565256e56966b585ae39b1c1"
    ),
    "faust.transport.consumer:Consumer.getmany": Relied(
        FETCH_LOOP, "copied, noting each batch", "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e"
    ),
    "faust.transport.consumer:Consumer.__init__": Relied(
        FETCH_LOOP + ", " + OFFSETS,
        "sets _read_offset, _n_acked, _commit_every, _committed_offset",
        "302410d59e6972d144e35ce91483b28783e01fd039f02a51f0b06c6d3953a001",
    ),
    "faust.transport.consumer:Consumer._commit_offsets": Relied(
        TABLE_WRITES + ", " + OFFSETS,
        "flushes app.producer before a commit; updates _committed_offset",
        "1a6979904118844111259d182ca1c6e92ccc16364ccbe55c58e59d6e254a7adb",
    ),
    "faust.transport.consumer:Consumer.on_partitions_revoked": Relied(
        OFFSETS, "drops revoked _committed_offset", "d04b7ae72c6fc206924a2879d6c90dd383f3e8ba6f4b10a19ca99a921eb8f4db"
    ),
    "mode.utils.collections:ManagedUserDict.__setitem__": Relied(
        TABLE_WRITES, "what table[key] = value does", "f3bdf602abc08dd1ace4cf2094d860f6569520a0af1e0428962678b56a2752d4"
    ),
    "faust.tables.table:Table.on_key_set": Relied(
        TABLE_WRITES, "what table[key] = value does", "a370e35ca55c2c7e36e93f0d4b485927c32d49199043cab2314572846184dd94"
    ),
    "faust.tables.base:Collection.send_changelog": Relied(
        TABLE_WRITES,
        "the changelog record it sends",
        "3dd3884e1b5fc0e1612bc688b83d9318a1805ddc49700d3b6b37bade73c3905d",
    ),
    "faust.tables.base:Collection.partition_for_key": Relied(
        TABLE_WRITES,
        "the current event's partition",
        "3b2291811b8dd791cdd0e690b2b09d966a4e961e2a2861182241195696393bed",
    ),
    "faust.tables.base:Collection._on_changelog_sent": Relied(
        TABLE_WRITES,
        "the persisted offset once sent",
        "60122c86a120d82cffa95da4c22323e12d67fa82f3112f08ac7f8edde7c47826",
    ),
    "faust.tables.base:Collection.data": Relied(
        TABLE_WRITES,
        "a table's data is its store, made once",
        "ade4a02ddd5582cb4264a7f927bf7a59e1c0ca6d0ebf9da40b665860cd1187f4",
    ),
    "faust.streams:current_event": Relied(
        TABLE_WRITES,
        "the stand-in event is read through it",
        "3b821f1a78d86a58234dfe781fbf539775b00e66fdac9489c1c398a2d81d7e9d",
    ),
    "faust.streams:Stream._set_current_event": Relied(
        TABLE_WRITES,
        "a weak reference to the event",
        "b9a41294b605ac08c44529e087ad0b907a11c587b2e0fcbecf9ad667a4633e61",
    ),
    "faust.stores.rocksdb:Store._set": Relied(
        TABLE_WRITES,
        "reads the current event's partition",
        "4227e561e288d9413bf663a3a67940fd4976f5484e70e49445858ce4d400d26e",
    ),
    "faust.transport.drivers.aiokafka:Producer.send": Relied(
        TABLE_WRITES, "returns aiokafka's future", "0b5bd08f52e5e2a90ff6307dbfc3c97afb01cb2687835e8fe8486c5bcad02dc1"
    ),
    "faust.transport.drivers.aiokafka:Producer.flush": Relied(
        TABLE_WRITES, "wrapped on the instance", "36d0cb3615f65b01010d1ec8c5b0f6180110e24c486799bc47c0d72be5152270"
    ),
    "faust.app.base:App._producer_flush": Relied(
        TABLE_WRITES, "the flush at a stop", "35c92baa028d57bdfc6c7b635030f1a90ec87df61b10054edda4f8dd56e8472e"
    ),
    "faust.tables.recovery:Recovery._restart_recovery": Relied(
        TABLE_WRITES, "the flush before a recovery", "6bd8a8558a2dffe4c60b8150f23d721baa6b3d658367f911a3ad2187e20efc6f"
    ),
    "faust.stores.memory:Store.__post_init__": Relied(
        MEMORY_STORE, "data and _key_partition", "e59c82f3785458b2c6bb8179a01b57270be3edf167615a3f6508f102b173baa2"
    ),
    "faust.stores.memory:Store.apply_changelog_batch": Relied(
        MEMORY_STORE,
        "overridden: only records after the read-back; Faust's keeps _key_partition",
        "71863e3cd727aac2001c4f19a393c637275eab36056c9a2d395ed1c7528e7647",
    ),
    "faust.stores.memory:Store._create_batch_iterator": Relied(
        MEMORY_STORE,
        "Faust's recovery keeps _key_partition",
        "b082c8bcc040382347025bd5b08d31700b2e6b1d2c0232f1de551f1b5495d1ed",
    ),
    "faust.stores.memory:Store.on_recovery_completed": Relied(
        MEMORY_STORE, "overridden", "a00bef343e139602606996e88809e62731a9113691ae678095266a52e0e0b013"
    ),
    "faust.stores.memory:Store.persisted_offset": Relied(
        MEMORY_STORE, "overridden", "fbba5c654497938828d8672f6424cf21883191422fa369a7172fbe6a5309aabf"
    ),
    "faust.stores.base:Store.set_persisted_offset": Relied(
        MEMORY_STORE, "overridden", "1dac35f34b4d713074cdfd44d18a5b888969c9e7fe1cd18cd16c2ffd93953c93"
    ),
    "faust.stores.base:Store.on_rebalance": Relied(
        MEMORY_STORE, "overridden", "a32fbe3c18de4288cda6a45d161fead88e838448760b178083e0cd0bf3c04495"
    ),
    "faust.tables.base:Collection.on_rebalance": Relied(
        MEMORY_STORE, "calls the store's", "0812ad692171a8fd8b3757f2868fa50e195ff1ab3284da50a3200c32fae02932"
    ),
    "faust.tables.base:Collection.on_recovery_completed": Relied(
        MEMORY_STORE, "calls the store's", "b1526fb39ea0e77e783b26059d2951a93f701405534cb667316553742215e87a"
    ),
    "faust.tables.recovery:Recovery._add": Relied(
        MEMORY_STORE + ", " + RECOVERY_SEEK,
        "recovery starts after the persisted offset; a partition added mid-recovery gets the offset None",
        "1584a197b11bf835c0e3c497952413ce5a5f13078fdd88a9dcfd60ea1e125fa6",
    ),
    "faust.tables.base:Collection._new_store_by_url": Relied(
        MEMORY_STORE, "the store found by its URL", "343a8125107d3f69ced468ee156659955d31abbc3bbed3df0e6ac87b474f850b"
    ),
    "mode.utils.imports:FactoryMapping.by_url": Relied(
        MEMORY_STORE, "STORES.aliases", "9020f00af2bc4f62f525985b51daa0687f9000d5b1f737eb1b41fa35c8b94dc5"
    ),
    "faust.transport.drivers.aiokafka:Producer._settings_extra": Relied(
        PRODUCER, "replaced", "a4c7bc41b63822236e4c9be1c49437d091f58c1b3a983eecabb7362a819aa8bd"
    ),
    "faust.transport.drivers.aiokafka:Producer._new_producer": Relied(
        PRODUCER, "merges _settings_extra last", "e72355c3430ed02f5202c83e2f5ef7daf484f33aa40e62f98fe3adec3e18aa17"
    ),
    "faust.transport.drivers.aiokafka:ThreadedProducer._new_producer": Relied(
        PRODUCER, "merges _settings_extra last", "707a11461ad007d711ee21def8ab1411a4d1defe27ddc891558833903c4d01c1"
    ),
    "faust.tables.recovery:Recovery._seek_offsets": Relied(
        RECOVERY_SEEK, "replaced", "19598ca63d94d250e49d2dfe48a3c48ecbdf65ee4f1a2871abda51d28b335e55"
    ),
    "mode.utils.collections:FastUserDict.__setitem__": Relied(
        MEMORY_STORE,
        "the store's own write, under ours",
        "a41472f1390fcaf8fbc9ca622dd0aa21783d89443890c5e16ff81ccf6a657960",
    ),
}

# Run in a fresh interpreter: the source of each function as Faust defines it, before any fix.
_HASH_SOURCES = """
import hashlib, importlib, inspect, json, sys

import faust

hashes = {}
for name in json.loads(sys.argv[1]):
    module_name, _, qualname = name.partition(":")
    found = importlib.import_module(module_name)
    try:
        for part in qualname.split("."):
            found = vars(found)[part]  # defined there, not inherited: a method moved elsewhere is a change
    except KeyError:
        hashes[name] = "missing"
        continue
    for inner in ("fget", "__func__", "fun"):  # a property, a static or class method, mode's ServiceTask
        found = getattr(found, inner, None) or found
    function = inspect.unwrap(found)
    hashes[name] = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
print(json.dumps({"version": faust.__version__, "hashes": hashes}))
"""


@pytest.fixture(scope="module")
def installed() -> dict[str, str]:
    """The installed Faust's hashes of the functions in ``UPSTREAM``."""
    done = subprocess.run(
        [sys.executable, "-c", _HASH_SOURCES, json.dumps(sorted(UPSTREAM))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(done.stdout)
    assert found["version"] == faust.__version__
    hashes: dict[str, str] = found["hashes"]
    return hashes


def test_the_hashes_are_of_the_version_the_fixes_are_written_for() -> None:
    assert RECORDED_FOR == FAUST_VERSION, (
        f"streams/faust_compat/ says its fixes are for faust-streaming {FAUST_VERSION}, but the hashes here "
        f"were recorded for {RECORDED_FOR}: re-check every fix against the new version, then record its hashes"
    )


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_upstream_function_unchanged(name: str, installed: dict[str, str]) -> None:
    fence, why, recorded = UPSTREAM[name]
    assert installed[name] == recorded, (
        f"upstream {name} changed (faust-streaming {faust.__version__}; recorded for {RECORDED_FOR}): "
        f"the fix in streams/faust_compat/{fence} relies on it ({why}) and must be re-checked, "
        f"then its hash recorded anew here"
    )


def test_check_version_refuses_another_version_and_passes_the_pinned_one() -> None:
    with pytest.raises(FaustVersionError, match=r"^faust-streaming 0\.15\.4 is installed, .*0\.15\.3"):
        check_version("0.15.4")
    check_version(FAUST_VERSION)
    check_version()  # the installed one: the pin in pyproject.toml holds


def test_the_worker_command_exits_with_one_line_on_another_faust_version() -> None:
    code = "import faust; faust.__version__ = '0.16.0'; from cli.main import main; main(['worker'])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=False
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shouwang: faust-streaming 0.16.0 is installed"), done.stderr
