"""Explain, plot and listen: freqrex from Python, in notebook-sized steps.

Run it as a script (``python examples/explain_and_listen.py [OUT_DIR]``) or paste the cells
(``# %%``) into a notebook. It uses the bundled reference model and example clips, so it
needs nothing else; in a notebook, the figure shows itself and ``IPython.display.Audio``
plays the reconstructions.
"""

# %% 1. Explain one clip: which frequencies does the model need to hear "flute"?
import sys
from pathlib import Path

import freqrex
from freqrex import examples

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-results")
model = freqrex.OnnxModel(examples.reference_model())  # opened once, reused below
clip = examples.example_clip()
quick = {"iterations": 2, "search_limit": 200, "seed": 0}  # the defaults: 10 and 3000

result = freqrex.explain(model, clip, **quick)
print(result)  # the same table as `freqrex run`

# %% 2. Plot: the figure is a matplotlib Figure; nothing switches your backend.
fig = result.plot()
out.parent.mkdir(parents=True, exist_ok=True)
fig.savefig(out.parent / f"{out.name}.png", dpi=80)

# %% 3. Listen: report.html has a player for the clip and for every reconstruction.
folder = result.save(out)
print(f"open {folder / 'report.html'} to listen")
try:  # in a notebook, play the sufficient reconstruction right here
    from IPython.display import Audio, display

    if "ipykernel" in sys.modules and result.sufficient.found:
        display(Audio(result.sufficient.audio, rate=result.sample_rate))
except ImportError:
    pass

# %% 4. Attack: does removing the most responsible bins flip the class?
attack = freqrex.attack(model, result=result, ks=(1, 10, 100))
print(attack)

# %% 5. Several clips in memory, no database: one Result each.
for r in freqrex.explain_many(model, examples.example_clips()[1:3], **quick):
    print(f"{Path(r.source or '').name}: {r.target_label} {r.confidence:.3f}, sufficient "
          f"{r.sufficient.size} {r.unit}, necessary {r.necessary.size}")
