"""The pictures of the README and the docs' home page, drawn from a real run of the bundled
MSDS1 model:  python docs/images/make_images.py  (about a minute on 2 cores)."""

from pathlib import Path

import rginspect
from rginspect.plotting import figure_of

HERE = Path(__file__).parent

tree = rginspect.analyze(
    rginspect.bundled_checkpoint("msds1_rgflow.pt"),
    "receptive",
    data="msds1:8",
    params={"receptive": {"per_level": 4}},
    progress=False,
)
figure = figure_of(tree.rginspect.plot("receptive", "maps"))
figure.savefig(HERE / "receptive.png", dpi=60)
print(f"wrote {HERE / 'receptive.png'}")
