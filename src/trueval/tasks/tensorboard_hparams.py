"""The HParams entry of a run in TensorBoard: what was chosen, and which curves are its results.

Lightning's ``log_hyperparams(params, metrics=...)`` writes the metric values again at step 0
under the same tags, and TensorBoard then drops the earlier points of those curves (val/test
showed one point). Here nothing is logged twice: the experiment summary names the existing
``test/*`` and ``val/*`` curves as its metrics, and the HParams plugin reads their last points.

The hyper-parameters are the keys the user chose (command-line overrides, the config-group choices)
and a few main knobs, never constants of the composed config such as ``data._target_``. The keys
that vary within the sweep (a single run: the overrides) are marked ``differs``, which the HParams
table shows first, so the interesting columns are visible without ticking; the headline metrics
come first for the same reason (the table shows five of each).
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from trueval.utils.job import job_view
from trueval.utils.resolvers import override_key

# config groups whose choice is a hyper-parameter (optimizer=sgd), and the main knobs of any run
CHOICE_GROUPS = ("experiment", "data", "model", "optimizer", "scheduler")
MAIN_KEYS = ("optimizer.lr", "optimizer.weight_decay", "data.batch_size", "trainer.max_epochs", "seed")
# never hyper-parameters: where things are, not what was trained
_NOT_HPARAMS = ("paths.", "hydra.", "extras.", "logger", "callbacks", "hparams_search", "data.root",
                "data.data_dir", "data.cache_dir", "data.yaml_path", "ckpt_path")


def _value(cfg: DictConfig, key: str, choices: Mapping[str, str]) -> Any:
    if key in choices and isinstance(cfg.get(key, None), (DictConfig, type(None))):
        return choices[key]
    value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
        return str(value)
    return value


def collect_hparams(cfg: DictConfig) -> tuple[dict[str, Any], list[str], dict[str, list[str]]]:
    """(name -> value, the names that differ, name -> every value of a grid sweep)."""
    job = job_view()
    overrides, choices, varying, jobs = job.overrides, job.choices, job.varying, job.grid
    keys: list[str] = []
    for key in [*(override_key(o) for o in overrides), *(g for g in CHOICE_GROUPS if g in choices), *MAIN_KEYS]:
        if key not in keys and not key.startswith(_NOT_HPARAMS):
            keys.append(key)
    hparams = {}
    for key in keys:
        value = _value(cfg, key, choices)
        if isinstance(value, (bool, int, float, str)):
            hparams[key] = value
    differs = [k for k in (varying or [override_key(o) for o in overrides]) if k in hparams]
    domains: dict[str, list[str]] = {}
    for job in jobs or []:
        for override in job:
            domains.setdefault(override_key(override), []).append(override.split("=", 1)[1])
    return hparams, differs, domains


def metric_tags(metrics: Mapping[str, Any], optimized: str | None) -> list[str]:
    """The final val/test curves to show, headline first: the test twin of the optimised metric,
    the optimised metric, then the other test and validation metrics."""
    tags = [k for k in metrics if k.split("/")[0] in ("val", "test") and "/ap50/" not in k
            and not k.endswith("/samples")]
    head = []
    if optimized:
        twin = "test/" + optimized.split("/", 1)[-1].removesuffix("_best")
        head = [t for t in dict.fromkeys((twin, optimized)) if t in tags]  # eval optimises test/acc itself
    rest = sorted((t for t in tags if t not in head), key=lambda t: (not t.startswith("test/"), t))
    return head + rest


def hparams_summaries(hparams: Mapping[str, Any], differs: Sequence[str], metrics: Sequence[str],
                      domains: Mapping[str, Sequence[str]] | None = None) -> list[Any]:
    """The experiment, session-start and session-end summaries of the HParams plugin."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    def summary(tag: str, data: Any) -> Any:
        pb = summary_pb2.Summary()
        pb.value.add(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)
        return pb

    now = time.time()
    infos = []
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=now)
    for name, value in hparams.items():
        info = api_pb2.HParamInfo(name=name, differs=name in differs)
        if isinstance(value, bool):
            info.type = api_pb2.DATA_TYPE_BOOL
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            info.type = api_pb2.DATA_TYPE_FLOAT64
            start.hparams[name].number_value = float(value)
        else:
            info.type = api_pb2.DATA_TYPE_STRING
            start.hparams[name].string_value = str(value)
            values = sorted(set(domains.get(name, []))) if domains else []
            if str(value) in values:  # a grid's values: the table's filter lists them
                info.domain_discrete.extend(values)
        infos.append(info)
    metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=tag) for tag in metrics]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metric_infos, time_created_secs=now)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=now)
    return [summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
            summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
            summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))]


def write_hparams(cfg: DictConfig, writer: Any, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Write the HParams entry through a ``SummaryWriter``; returns the hyper-parameters written."""
    hparams, differs, domains = collect_hparams(cfg)
    tags = metric_tags(metrics, cfg.get("optimized_metric"))
    file_writer = writer._get_file_writer()  # what Lightning's own log_hyperparams writes through
    for pb in hparams_summaries(hparams, differs, tags, domains):
        file_writer.add_summary(pb)
    return hparams
