"""Save and load stable-baselines3 model files without unpickling anything from them.

SB3's ``model.zip`` holds the weights (``.pth``, which SB3 reads with ``weights_only=True``) and
a ``data`` JSON whose entries that are not plain JSON (the policy class, the spaces, the
schedules, ``train_freq``, the last observations, NegActionDQN's rule...) are cloudpickled.
SB3's loader unpickles them, so a crafted file runs any code it likes while it is loaded.

:func:`save_model` writes SB3's file unchanged and adds, inside each pickled entry, a plain twin
under ``":plain:"``: tagged JSON such as ``{"$Box": {...}}`` or ``{"$class": "module:Name"}``
that :func:`from_plain` reads back without running code. SB3's own loader ignores the twins.

:func:`load_model` hands SB3's loader a replacement (``custom_objects``) for every pickled entry,
so SB3 never unpickles one. Each replacement is its plain twin, or, for files without twins
(plain SB3 files, older negdl files), a value rebuilt from the algorithm class and the env:
the policy class from ``policy_aliases["MlpPolicy"]``, the spaces from ``env``, the schedules
and buffers SB3 rebuilds itself, ``train_freq`` from the class default (with a warning). Any
other pickled entry is refused with :class:`UnsafeModelFileError` naming it. Classes are only
taken from negdl's, SB3's, ``torch.nn`` and ``torch.optim`` modules, and must have the kind
their entry needs (a policy, a replay buffer...). ``allow_pickle=True`` opts into SB3's own
loader for files you trust, e.g. to re-save an older file in the safe format.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import importlib
import inspect
import io
import json
import os
import pathlib
import re
import warnings
import zipfile
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule
from stable_baselines3.dqn import DQN

from neg_agents.common.dqn_arguments import check_dqn_arguments, check_replay_buffer_memory
from negdl.devices import resolve_device

#: Key of the plain twin inside a pickled ``data`` entry.
PLAIN = ":plain:"
#: Modules whose classes a model file may name.
CLASS_MODULES = ("neg_agents", "stable_baselines3", "torch.nn", "torch.optim")
#: Modules whose frozen dataclasses a model file may hold (e.g. ``ForbiddingRule``).
DATACLASS_MODULES = ("neg_agents",)
#: What a class named by each top-level entry must be.
CLASS_KINDS: dict[str, type] = {"policy_class": BasePolicy, "replay_buffer_class": ReplayBuffer}
#: Entries SB3 rebuilds in ``_setup_model`` (from plain hyperparameters) or resets when
#: training resumes: files without twins load them as None.
REBUILT_OR_RESET = (
    "lr_schedule",
    "exploration_schedule",
    "replay_buffer_class",
    "_last_obs",
    "_last_original_obs",
    "_last_episode_starts",
    "ep_info_buffer",
    "ep_success_buffer",
)
#: Largest ``data`` JSON read (the twins of a 100,000-obstacle env's spaces take ~10 MB).
MAX_DATA_BYTES = 512 * 2**20


class UnsafeModelFileError(ValueError):
    """A model file holds a pickled entry that cannot be rebuilt without running its code."""


class SpaceMismatchError(ValueError):
    """A model was saved for other observation or action spaces than the env it is given."""


class NotPlain(TypeError):
    """A value with no plain-JSON form."""


# ---------------------------------------------------------------------------------------------
# Plain JSON: values to tagged JSON and back, with no code from the file.


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _in_modules(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _resolve_class(name: Any, prefixes: tuple[str, ...] = CLASS_MODULES) -> type:
    """The class ``"module:Qual.Name"`` if it is defined in one of ``prefixes``' modules."""
    public = r"[A-Za-z]\w*(\.[A-Za-z]\w*)*"  # no private or dunder attribute is ever followed
    if not isinstance(name, str) or not re.fullmatch(f"{public}:{public}", name):
        raise UnsafeModelFileError(f"{name!r} is not a class name of the form module:Name")
    module_name, qualname = name.split(":")
    if not _in_modules(module_name, prefixes):
        raise UnsafeModelFileError(
            f"class {name} is outside the modules a model file may name ({', '.join(prefixes)})"
        )
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise UnsafeModelFileError(f"class {name} does not exist here ({error})") from error
    if not isinstance(found, type) or not _in_modules(found.__module__, prefixes):
        raise UnsafeModelFileError(f"{name} is not a class defined in {', '.join(prefixes)}")
    return found


def _array_to_plain(array: np.ndarray) -> dict[str, Any]:
    if array.dtype.kind not in "biufc":
        raise NotPlain(f"an array of dtype {array.dtype} has no plain form")
    data = array if array.flags.c_contiguous else array.copy(order="C")
    return {
        "dtype": data.dtype.str,
        "shape": list(data.shape),
        "data": base64.b64encode(data.tobytes()).decode(),
    }


def _array_from_plain(record: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(record["dtype"])
    if dtype.kind not in "biufc" or dtype.fields is not None:
        raise UnsafeModelFileError(f"array dtype {record['dtype']!r} is not plain numbers")
    shape = tuple(int(n) for n in record["shape"])
    raw = base64.b64decode(record["data"], validate=True)
    if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise UnsafeModelFileError(f"array of shape {shape} {dtype} holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def to_plain(value: Any) -> Any:
    """``value`` as JSON data, tagging what JSON has no type for (``{"$tuple": [...]}``...).

    :raises NotPlain: a value with no plain form (a function, an arbitrary object...).
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, TrainFreq):
        return {"$TrainFreq": [value.frequency, value.unit.value]}
    if isinstance(value, (list, tuple)):
        items = [to_plain(item) for item in value]
        return items if isinstance(value, list) else {"$tuple": items}
    if isinstance(value, dict):
        if not all(isinstance(key, str) and not key.startswith("$") for key in value):
            raise NotPlain(f"a dict with keys {list(value)} has no plain form")
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return {"$ndarray": _array_to_plain(value)}
    if isinstance(value, np.generic):
        return {"$scalar": _array_to_plain(np.asarray(value))}
    if isinstance(value, collections.deque):
        return {"$deque": {"items": to_plain(list(value)), "maxlen": value.maxlen}}
    if isinstance(value, spaces.Space):
        return _space_to_plain(value)
    if isinstance(value, FloatSchedule):
        return {"$FloatSchedule": to_plain(value.value_schedule)}
    if isinstance(value, ConstantSchedule):
        return {"$ConstantSchedule": to_plain(value.val)}
    if isinstance(value, LinearSchedule):
        return {"$LinearSchedule": to_plain([value.start, value.end, value.end_fraction])}
    if isinstance(value, type):
        name = _qualified_name(value)
        try:
            _resolve_class(name)
        except UnsafeModelFileError as error:
            raise NotPlain(str(error)) from None
        return {"$class": name}
    if dataclasses.is_dataclass(value) and _in_modules(type(value).__module__, DATACLASS_MODULES):
        fields = {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$dataclass": {"class": _qualified_name(type(value)), "fields": fields}}
    raise NotPlain(f"a {type(value).__name__} has no plain form")


def _space_to_plain(space: spaces.Space) -> dict[str, Any]:
    if type(space) is spaces.Box:
        return {"$Box": {"low": to_plain(space.low), "high": to_plain(space.high)}}
    if type(space) is spaces.Discrete:
        return {"$Discrete": {"n": int(space.n), "start": int(space.start)}}
    if type(space) is spaces.MultiDiscrete:
        return {"$MultiDiscrete": {"nvec": to_plain(space.nvec), "start": to_plain(space.start)}}
    if type(space) is spaces.MultiBinary:
        return {"$MultiBinary": to_plain(space.n)}
    if type(space) is spaces.Dict:
        return {"$Dict": {key: _space_to_plain(sub) for key, sub in space.spaces.items()}}
    raise NotPlain(f"a {type(space).__name__} space has no plain form")


def _dataclass_from_plain(record: dict[str, Any]) -> Any:
    cls = _resolve_class(record["class"], DATACLASS_MODULES)
    if not dataclasses.is_dataclass(cls):
        raise UnsafeModelFileError(f"{record['class']} is not a dataclass")
    return cls(**from_plain(record["fields"]))


_DECODERS: dict[str, Any] = {
    "$tuple": lambda items: tuple(from_plain(items)),
    "$TrainFreq": lambda pair: TrainFreq(int(pair[0]), TrainFrequencyUnit(pair[1])),
    "$ndarray": _array_from_plain,
    "$scalar": lambda record: _array_from_plain(record)[()],
    "$deque": lambda record: collections.deque(from_plain(record["items"]), record["maxlen"]),
    "$Box": lambda r: spaces.Box(from_plain(r["low"]), from_plain(r["high"])),
    "$Discrete": lambda r: spaces.Discrete(int(r["n"]), start=int(r["start"])),
    "$MultiDiscrete": lambda r: spaces.MultiDiscrete(
        from_plain(r["nvec"]), start=from_plain(r["start"])
    ),
    "$MultiBinary": lambda n: spaces.MultiBinary(from_plain(n)),
    "$Dict": lambda r: spaces.Dict({key: from_plain(sub) for key, sub in r.items()}),
    "$FloatSchedule": lambda inner: FloatSchedule(from_plain(inner)),
    "$ConstantSchedule": lambda val: ConstantSchedule(float(val)),
    "$LinearSchedule": lambda args: LinearSchedule(*(float(a) for a in args)),
    "$class": _resolve_class,
    "$dataclass": _dataclass_from_plain,
}


def from_plain(value: Any) -> Any:
    """The value :func:`to_plain` wrote; builds only the types it tags, never runs file code.

    :raises UnsafeModelFileError: an unknown tag, a class outside the allowed modules, or a
        malformed record.
    """
    if isinstance(value, list):
        return [from_plain(item) for item in value]
    if not isinstance(value, dict):
        return value
    tags = [key for key in value if key.startswith("$")]
    if not tags:
        return {key: from_plain(item) for key, item in value.items()}
    if len(value) != 1 or tags[0] not in _DECODERS:
        raise UnsafeModelFileError(f"unknown plain record {sorted(value)}")
    try:
        return _DECODERS[tags[0]](value[tags[0]])
    except UnsafeModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AssertionError) as error:
        raise UnsafeModelFileError(f"malformed {tags[0]} record ({error})") from error


# ---------------------------------------------------------------------------------------------
# Saving.


def _zip_path(path: str | os.PathLike[str]) -> pathlib.Path:
    """SB3's convention: a path without a suffix gets ``.zip``."""
    path = pathlib.Path(path)
    return path if path.suffix else path.with_suffix(".zip")


def _with_plain_twins(model: BaseAlgorithm, data_json: str) -> str:
    data = json.loads(data_json)
    for key, item in data.items():
        if isinstance(item, dict) and ":serialized:" in item:
            try:
                item[PLAIN] = to_plain(model.__dict__[key])
            except NotPlain as error:
                warnings.warn(
                    f"{key} is saved only pickled ({error}): loading this file safely will need "
                    f"custom_objects={{{key!r}: ...}}",
                    stacklevel=3,
                )
    return json.dumps(data, indent=4)


def save_model(
    model: BaseAlgorithm,
    path: str | os.PathLike[str] | io.BufferedIOBase,
    exclude: Iterable[str] | None = None,
    include: Iterable[str] | None = None,
) -> None:
    """``model.save(path)`` in SB3's format, with a plain twin for each pickled entry.

    A path gets ``.zip`` when it has no suffix, as with SB3; the file is written whole or not at
    all (a temporary file renamed over it).

    :param model: any SB3 algorithm.
    :param path: a file path or a writable binary stream.
    :param exclude: attributes not to save, as for SB3's ``save``.
    :param include: attributes to save although SB3 leaves them out.
    """
    buffer = io.BytesIO()
    BaseAlgorithm.save(model, buffer, exclude, include)
    buffer.seek(0)
    if isinstance(path, (str, os.PathLike)):
        destination = _zip_path(path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.partial")
        with open(partial, "wb") as target:
            _rewrite(model, buffer, target)
        os.replace(partial, destination)
    else:
        _rewrite(model, buffer, path)


def _rewrite(model: BaseAlgorithm, source: io.BytesIO, target: Any) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as rewritten:
        for info in original.infolist():
            payload = original.read(info)
            if info.filename == "data":
                payload = _with_plain_twins(model, payload.decode()).encode()
            rewritten.writestr(info, payload)


# ---------------------------------------------------------------------------------------------
# Loading.


def _read_data(path: pathlib.Path | io.BufferedIOBase) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("data")
            if info.file_size > MAX_DATA_BYTES:
                raise UnsafeModelFileError(
                    f"its data entry declares {info.file_size:,} bytes, more than any model's "
                    f"({MAX_DATA_BYTES:,})"
                )
            data = json.loads(archive.read(info).decode())
    except zipfile.BadZipFile as error:
        raise ValueError(f"not a zip file ({error})") from error
    except KeyError as error:
        raise ValueError("no 'data' entry: not a stable-baselines3 model file") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"its data entry is not JSON ({error})") from error
    finally:
        if not isinstance(path, pathlib.Path):
            path.seek(0)
    if not isinstance(data, dict):
        raise ValueError("its data entry is not a JSON object")
    return data


def _class_default(algo_class: type, name: str) -> Any:
    """The default of constructor argument ``name`` on the first class of the MRO that has it."""
    for cls in algo_class.__mro__:
        parameter = inspect.signature(cls.__init__).parameters.get(name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    raise KeyError(name)


def _rebuild(
    algo_class: type[BaseAlgorithm], key: str, item: dict[str, Any], env: Any, source: str
) -> Any:
    """The value of pickled entry ``key`` without its pickle (see the module docstring)."""
    if PLAIN in item:
        value = from_plain(item[PLAIN])
        kind = CLASS_KINDS.get(key)
        if kind is not None and not (isinstance(value, type) and issubclass(value, kind)):
            raise UnsafeModelFileError(
                f"entry {key!r} must name a {kind.__name__} class, got {value!r}"
            )
        if key.endswith("_space") and not isinstance(value, spaces.Space):
            raise UnsafeModelFileError(f"entry {key!r} is not a space")
        return value
    if key in REBUILT_OR_RESET:
        return None
    if key in ("observation_space", "action_space"):
        if env is None:
            raise UnsafeModelFileError(
                f"{source} stores its {key} only pickled (a plain SB3 file or an older negdl "
                "file); pass env= (an env of the kind it was trained on) to take it from there"
            )
        return getattr(env, key)
    if key == "policy_class":
        default = algo_class.policy_aliases["MlpPolicy"]
        saved_module = item.get("__module__")
        if saved_module not in (None, default.__module__):
            raise UnsafeModelFileError(
                f"{source} was saved with a policy class from {saved_module}, not "
                f"{algo_class.__name__}'s MlpPolicy; the safe loader rebuilds only that one"
            )
        return default
    if key == "train_freq":
        default = _class_default(algo_class, "train_freq")
        warnings.warn(
            f"{source} stores train_freq only pickled: it is set to {algo_class.__name__}'s default "
            f"{default!r}, which matters only if training continues; save the model again with "
            "negdl to keep its own",
            stacklevel=4,
        )
        return default
    raise UnsafeModelFileError(
        f"{source} holds the entry {key!r} ({item.get(':type:', 'an object')}) only as pickled "
        "Python code, which the safe loader never runs. If you made or trust the file, load it "
        "with allow_pickle=True and save it again (the new file loads safely); otherwise pass "
        f"custom_objects={{{key!r}: <its value>}}"
    )


def load_model(
    algo_class: type[BaseAlgorithm],
    path: str | os.PathLike[str] | io.BufferedIOBase,
    env: Any = None,
    device: th.device | str = "auto",
    custom_objects: dict[str, Any] | None = None,
    allow_pickle: bool = False,
    **kwargs: Any,
) -> BaseAlgorithm:
    """``algo_class.load(path, env, device, ...)``, SB3's loader, with nothing unpickled.

    :param algo_class: the algorithm the file was saved from (e.g. ``NegRewardDQN``, ``DQN``).
    :param path: the ``.zip`` file (``.zip`` is added when the path has no suffix) or a stream.
    :param env: the env to run on; files without plain twins take their spaces from it.
    :param device: torch device; one this machine does not have is an error.
    :param custom_objects: your own values for entries, used instead of the file's.
    :param allow_pickle: use SB3's loader as it is, unpickling every entry: only for files you
        made or trust, since a pickled entry can run any code.
    :param kwargs: attributes to change on load, as for SB3's ``load`` (e.g. ``buffer_size``).
    :raises FileNotFoundError: no file at ``path``.
    :raises UnsafeModelFileError: a pickled entry that cannot be rebuilt safely.
    :raises ValueError: not a model file, or bad values in it.
    """
    resolve_device(device)
    source: Any = path
    if isinstance(path, (str, os.PathLike)):
        source = pathlib.Path(path)
        if not source.is_file() and not source.suffix:
            source = _zip_path(source)
        if not source.is_file():
            raise FileNotFoundError(f"no model file at {path}")
    sb3_load = BaseAlgorithm.load.__func__  # type: ignore[attr-defined]
    if allow_pickle:
        return sb3_load(
            algo_class, source, env=env, device=device, custom_objects=custom_objects, **kwargs
        )
    name = str(path) if isinstance(path, (str, os.PathLike)) else "the model file"
    try:
        data = _read_data(source)
    except UnsafeModelFileError as error:
        raise UnsafeModelFileError(f"{name}: {error}") from None
    except ValueError as error:
        raise ValueError(f"{name} is not a valid model file: {error}") from error
    replacements = dict(custom_objects or {})
    for key, item in data.items():
        if isinstance(item, dict) and ":serialized:" in item and key not in replacements:
            try:
                replacements[key] = _rebuild(algo_class, key, item, env, name)
            except UnsafeModelFileError as error:
                message = str(error)
                raise UnsafeModelFileError(
                    message if message.startswith(name) else f"{name}: {message}"
                ) from None
    if env is not None:
        check_spaces(replacements, env, name)
    if issubclass(algo_class, DQN):
        _check_dqn_file(data, replacements, kwargs)
    return sb3_load(
        algo_class, source, env=env, device=device, custom_objects=replacements, **kwargs
    )


def check_spaces(saved: dict[str, Any], env: Any, source: str = "the model") -> None:
    """Raise a :class:`SpaceMismatchError` that says how to fix it when a model saved with the spaces in
    ``saved`` (``observation_space``, ``action_space``; missing ones are skipped) cannot act in
    ``env``."""
    for key in ("observation_space", "action_space"):
        expected, got = saved.get(key), getattr(env, key)
        if expected is not None and expected != got:
            kind = key.removesuffix("_space")
            raise SpaceMismatchError(
                f"{source} was trained on another {kind} space: it expects {_describe(expected)}, "
                f"this env has {_describe(got)}. Use the env id and options it was trained with "
                "(see the config.json beside the model), e.g. the same num_obstacles."
            )


def _describe(space: spaces.Space) -> str:
    """A one-line description (a Box's full bounds would flood the message)."""
    if isinstance(space, spaces.Box):
        return f"Box of shape {space.shape} ({space.dtype})"
    return str(space)


def _check_dqn_file(
    data: dict[str, Any], replacements: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    """Check the hyperparameters a DQN file holds and its replay buffer's size, before SB3
    builds anything from them."""
    values = {**data, **replacements, **kwargs}
    check_dqn_arguments(values)
    observation_space, action_space = values.get("observation_space"), values.get("action_space")
    if isinstance(observation_space, spaces.Space) and isinstance(action_space, spaces.Space):
        check_replay_buffer_memory(
            values.get("buffer_size", 1),
            observation_space,
            action_space,
            bool(values.get("optimize_memory_usage", False)),
        )
