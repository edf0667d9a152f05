"""Each comparison method on the shared real subsets, through the normal run record (slow).

The same runs as the experiment sweeps (conf/experiment/{umint_vs_sota,smile_vs_batch_correction}),
one seed each, on the dataset each method is compared on. Skips when ../shared/data is absent or
the method's package is not installed.
"""

from __future__ import annotations

import json

import pytest

from conftest import compose_config
from scmint.models.base import DataMismatchError
from scmint.train import train

PACKAGES = {
    "wnn": "muon",
    "mofa": "mofapy2",
    "totalvi": "scvi",
    "harmony": "harmonypy",
    "liger": "pyliger",
    "scanorama": "scanorama",
}
#: The protocol on a coarser Leiden grid (the scIB grid has 20 resolutions): the methods, not the
#: evaluation, are under test here.
COARSE = (
    "logger=none",
    "evaluation.leiden_resolutions=[0.5,1.0]",
    "evaluation.leiden_search_steps=2",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "data", "extra"),
    [
        ("wnn", "bmmc_cite_600", ()),
        ("mofa", "bmmc_cite_600", ()),
        ("totalvi", "bmmc_cite_600", ("+model.train_options.max_epochs=20",)),  # 400 by default
        ("liger", "bmmc_cite_600", ()),  # the RNA counts' two batches
        ("harmony", "pancreas_xin_wang", ()),
        ("scanorama", "pancreas_xin_wang", ()),
        ("harmony", "snare_cellline_1047", ()),  # aligns RNA and ATAC (paired_mode=modalities)
        ("scanorama", "snare_cellline_1047", ()),
    ],
)
def test_method_runs_on_the_shared_subset(model, data, extra, shared_data, tmp_path):
    pytest.importorskip(
        PACKAGES[model], reason=f"pip install 'scmint[baselines]' for model={model}"
    )
    metrics = train(compose_config([f"model={model}", f"data={data}", *COARSE, *extra], tmp_path))
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "ok"
    assert record["data"] == data and record["model"] == model
    assert record["n_cells"] == metrics["n_cells"] > 500
    assert record["ari_kmeans"] is not None and record["nmi_leiden"] is not None
    if data == "snare_cellline_1047":
        assert record["silhouette_modality"] is not None  # scored like mpSMILE


@pytest.mark.slow
def test_liger_refuses_log_expression(shared_data, tmp_path):
    pytest.importorskip("pyliger", reason="pip install 'scmint[baselines]' for model=liger")
    cfg = compose_config(["model=liger", "data=pancreas_xin_wang", *COARSE], tmp_path)
    with pytest.raises(DataMismatchError, match="needs counts"):
        train(cfg)
