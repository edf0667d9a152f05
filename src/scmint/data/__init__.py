"""Data: sources (simulator, files, registry), preprocessing recipes and the shared datamodule."""

import mudata as _mudata

# Adopt mudata 0.4's behaviour now (and silence its FutureWarning): modalities' obs columns are
# not pulled into the MuData's obs implicitly; scmint maps cell_type/batch explicitly.
_mudata.set_options(pull_on_update=False)

from scmint.data.datamodule import MultiOmicsDataModule  # noqa: E402
from scmint.data.spec import DataSpec  # noqa: E402

__all__ = ["DataSpec", "MultiOmicsDataModule"]
