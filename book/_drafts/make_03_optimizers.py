"""DRAFT (next session): writes book/03_optimizers.ipynb, unexecuted. Run it, then `book_tools stamp`
and `execute book/03_optimizers.ipynb`, fill VERDICT_PLACEHOLDER from the outputs, and add the chapter to _toc.yml."""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = []


def md(s, tags=None):
    c = new_markdown_cell(s.strip("\n"))
    if tags:
        c.metadata["tags"] = tags
    cells.append(c)


def code(s, tags=None):
    c = new_code_cell(s.strip("\n"))
    if tags:
        c.metadata["tags"] = tags
    cells.append(c)


md(r"""
# Chapter 3: Optimisers

The source's second trick is "more efficient gradient descent": use a better optimiser than plain stochastic
gradient descent. It names Adam, writes down that Adam keeps running averages of the gradient and of its square,
and recommends a learning rate of $10^{-3}$ with $\beta_1 = 0.9$, $\beta_2 = 0.997$; it claims that Adam converges
faster than SGD. Its formulas, however, are missing. This chapter writes Adam's update out and checks it against
PyTorch, shows why optimising a *game* is not minimising a loss, and measures every common optimiser on the same
GAN.

**In this chapter you will**

- write Adam's update as five lines of tensor code and watch it match `torch.optim.Adam` step by step on a GAN;
- see on the Dirac-GAN {cite}`mescheder2018converge` why gradient descent circles around a GAN's equilibrium
  instead of converging to it, and what momentum and Adam do to that circle;
- measure SGD, momentum, Nesterov, RMSprop, Adagrad, Adadelta and four Adam settings (DCGAN's, two time-scales,
  the source's, PyTorch's defaults) over 5 seeds on `ring8`, `grid25` and MNIST, with their cost per step;
- test the source's claim that Adam "converges faster than SGD";
- get a verdict with numbers.
""")

code(r"""
import json
import os
import statistics
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

import gantricks
from gantricks import TrainConfig, Trainer, viz
from gantricks.dirac import dirac_trajectories, plot_dirac
from gantricks.experiments import format_table, summarize, versus_baseline
from gantricks.losses import discriminator_loss, generator_loss
from gantricks.metrics import mode_coverage
from gantricks.optim import OPTIM_PRESETS, optim_preset

QUICK = gantricks.quick()  # GANTRICKS_QUICK=1 (the tests) runs the same cells with tiny budgets
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RING_STEPS = 150 if QUICK else 3000  # as in the stored 2D study
CURVE_SEEDS = [0] if QUICK else [0, 1, 2]
ADAM_STEPS = 5 if QUICK else 25
TIMING_STEPS, TIMING_REPEATS = (5, 1) if QUICK else (60, 5)
print(f"gantricks {gantricks.__version__}, torch {torch.__version__}, device {DEVICE}, QUICK={QUICK}")
""")

md(r"""
## The presets

`gantricks.optim` builds every optimiser from `torch.optim` (nothing is hand-rolled in the package). G and D get
their own learning rates, so the *two time-scale update rule* (TTUR) of Heusel et al. {cite}`heusel2017ttur` is
just `lr_d != lr_g`. Named presets record where their numbers come from:
""")

code(r"""
lines = ["| preset | optimiser | lr G | lr D | other | source |", "|---|---|---|---|---|---|"]
for name in OPTIM_PRESETS:
    o = optim_preset(name)
    other = {"adam": f"β = {o.betas}", "sgd": f"momentum {o.momentum}" + (", Nesterov" if o.nesterov else ""),
             "rmsprop": f"α = {o.alpha}"}.get(o.name, "")
    lines.append(f"| `{name}` | {o.name} | {o.lr_g:g} | {o.lr_d:g} | {other} | {OPTIM_PRESETS[name]['source']} |")
display(Markdown("\n".join(lines)))
""")

md(r"""
Use one with `TrainConfig(optim={"preset": "ttur-sagan"})`, in a grid file, or with
`python -m gantricks train --optim-preset ttur-sagan`; any other field given beside the preset overrides its value.

## Adam from its equations

Adam {cite}`kingma2015adam` keeps, for every parameter, an exponential moving average of the gradient $g_t$ (the
first moment $m_t$) and of its elementwise square (the second moment $v_t$), corrects both for their
initialisation at zero, and steps along the ratio:

$$
\begin{aligned}
m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, &
v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2, \\
\hat m_t &= \frac{m_t}{1 - \beta_1^t}, &
\hat v_t &= \frac{v_t}{1 - \beta_2^t}, \\
\theta_t &= \theta_{t-1} - \alpha\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}. &&
\end{aligned}
$$

The step of each coordinate is about $\alpha$ times the sign of its recent gradients, whatever their scale; this
is why one learning rate serves layers whose gradients differ by orders of magnitude. In tensor code (this is the
one optimiser written out in this book, to be *checked*, not used):
""")

code(r"""
def adam_update(param, grad, m, v, t, lr, betas, eps=1e-8):
    # One Adam step on tensors, in place: Kingma & Ba (2015), Algorithm 1.
    m.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
    v.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    m_hat = m / (1 - betas[0] ** t)
    v_hat = v / (1 - betas[1] ** t)
    param.sub_(lr * m_hat / (v_hat.sqrt() + eps))
""")

md(r"""
Now the check, on a real GAN: the MNIST generator of chapter 1 (1.5 million parameters), trained against its
discriminator with the source's Adam settings. At every step the generator's gradient is computed once; PyTorch's
`Adam` updates the generator, and `adam_update` updates a copy of its parameters with the same gradient. If the
equations are right, the two stay equal to float rounding.
""")

code(r"""
run = Trainer(TrainConfig(dataset="mnist", steps=ADAM_STEPS, device=DEVICE, seed=0, progress=False,
                          optim={"preset": "source-adam"}))
settings = optim_preset("source-adam")
G, D = run.G, run.D
reference = torch.optim.Adam(G.parameters(), lr=settings.lr_g, betas=settings.betas, foreach=False)
mine = [p.detach().clone() for p in G.parameters()]
state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in mine]
rows = []
for t in range(1, ADAM_STEPS + 1):
    real = run.sampler.next()[0]
    z = run.prior.sample(real.shape[0], run.device)
    d_terms = discriminator_loss(D(real), D(G(z).detach()))  # D learns too, so G's gradients keep changing
    run.opt_d.zero_grad()
    d_terms["loss_d"].backward()
    run.opt_d.step()
    reference.zero_grad()
    generator_loss(D(G(z))).backward()
    for p, q, (m, v) in zip(G.parameters(), mine, state):
        adam_update(q, p.grad, m, v, t, settings.lr_g, settings.betas)
    reference.step()
    gap = max((p.detach() - q).abs().max().item() for p, q in zip(G.parameters(), mine))
    size = max(p.detach().abs().max().item() for p in G.parameters())
    rows.append((t, gap, size))
assert all(gap < 1e-6 for _, gap, _ in rows), rows
print("step  largest |torch.optim.Adam - adam_update|  largest |parameter|")
for t, gap, size in rows[:3] + rows[-2:]:
    print(f"{t:4d}  {gap:36.2e}  {size:18.3f}")
print(f"all {len(rows)} steps agree to < 1e-6 (float32 rounding)")
""")

md(r"""
The `assert` would stop the notebook if a single parameter differed by $10^{-6}$ after any step. (`foreach=False`
makes PyTorch use its reference loop; the fused and foreach versions that `gantricks` uses compute the same update
with different rounding.)

## Why a GAN is not minimisation: the Dirac-GAN

An optimiser's textbook job is to go downhill on one loss. A GAN has two players, each going downhill on its own
loss, and their joint update is not the gradient of anything. Mescheder et al. {cite}`mescheder2018converge` reduce
this to two numbers. The real data is a point at 0, the generator emits one point $\theta$, and the discriminator
is linear, $D(x) = \psi x$. With $f(t) = -\log(1 + e^{-t})$ the game is

$$
\min_\theta \max_\psi \; L(\theta, \psi) = f(\psi \theta) + f(0),
$$

whose only equilibrium is $\theta = \psi = 0$: the generator on the data, and a discriminator that cannot tell.
The players' gradient field $v(\theta, \psi) = \big(-\psi f'(\psi\theta),\; \theta f'(\psi\theta)\big)$ is a
*rotation* about that point. The continuous flow circles forever; simultaneous gradient descent with any step
size multiplies $\theta^2 + \psi^2$ by $1 + h^2 f'(\psi\theta)^2 > 1$ at each step and spirals **out**; alternating
updates (D, then G, as `gantricks.Trainer` does) stay on a closed orbit; momentum spirals out faster. Every path
below is computed by `gantricks.dirac` with the same `torch.optim` optimisers the training loop uses:
""")

code(r"""
fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
for ax, loss in zip(axes, ("minimax", "ns")):
    paths = dirac_trajectories(lr=0.1, steps=60 if QUICK else 600, start=(1.0, 1.0), loss=loss)
    plot_dirac(paths, ax=ax, loss=loss, lim=4.5)
    for name, p in paths.items():
        print(f"{loss:8s} {name:16s} distance from the equilibrium: start {np.hypot(*p[0]):.2f}, "
              f"end {np.hypot(*p[-1]):.2f}")
""")

md(r"""
Left, the game as written (minimax), 600 steps of size 0.1 from $(1, 1)$: simultaneous gradient descent drifts
outwards, alternating descent stays on its orbit, momentum spirals out faster, and Adam, whose steps have a size
of about $\alpha$ whatever the gradient, spirals out fastest of all (the printed distances give the numbers). None
of them converges. This is why later GAN papers add regularisers such as a gradient penalty on $D$ (Mescheder et
al. prove that it makes the equilibrium attractive), and why the curves of $D(x)$ and $D(G(z))$ below oscillate
instead of settling. Right, the non-saturating loss that `gantricks` trains with: the field is no longer a pure
rotation and pulls the paths inwards, but none reaches the equilibrium in 600 steps, and momentum and Adam stay
farthest from it. In a game, a larger effective step moves the players *around* the equilibrium faster, not
necessarily towards it, so "converges faster" is not a property an optimiser has on its own.

## Measured: every preset on `ring8`, `grid25` and MNIST

Each preset trains the baseline GAN of chapter 1 (PacGAN-shaped MLPs on the 2D mixtures, 3,000 steps; the MLP of
chapter 1 on MNIST, 2,000 steps; batch 128), 5 seeds each, evaluated as in "How we measure". The budgets are
shorter than in chapter 2 to afford ten optimisers on two CPU cores; the baseline row (`dcgan`) is in each table,
so every comparison is within one budget.
""")

code(r"""
def stored(name):
    path = f"results/{name}"
    if not os.path.exists(path):  # e.g. on Colab, where only the package is installed: fetch the stored file
        import urllib.request

        os.makedirs("results", exist_ok=True)
        urllib.request.urlretrieve(f"https://raw.githubusercontent.com/gantricks/gantricks/main/book/{path}", path)
    with open(path) as f:
        return json.load(f)


DATASETS = ("ring8", "grid25", "mnist")
grids = {data: stored(f"optim_{data}_grid.json") for data in DATASETS}
results = {data: stored(f"optim_{data}.json") for data in DATASETS}
for data, res in results.items():
    print(f"{data}: {res['command']}\n    {json.dumps(res['meta'])}")
""")

code(r"""
from gantricks.cli import main

if QUICK:  # the same command, live, with a tiny budget: the stored numbers come from code that still runs
    live = os.path.join(tempfile.mkdtemp(), "quick.json")
    main(["ablate", "--grid", "results/optim_ring8_grid.json", "--seeds", "1", "--steps", "20", "--out", live])
""", tags=["nbval-ignore-output"])

code(r"""
BASELINE = "dcgan (baseline)"
FORMATS = {"ring8": {"modes": ".1f", "high_quality": ".3f", "kl": ".3f"},
           "grid25": {"modes": ".1f", "high_quality": ".3f", "kl": ".3f"},
           "mnist": {"digits_covered": ".1f", "kl": ".3f", "frechet": ".1f"}}


def table(data):
    rows, formats = results[data]["rows"], FORMATS[data]
    marks = {(r["config"], r["metric"]): f"{r['diff']:+.3g}" + (" *" if r["p"] < 0.05 else "")
             for r in versus_baseline(rows, BASELINE, list(formats))}
    first, last = list(formats)[0], list(formats)[-1]
    lines = format_table(summarize(rows, list(formats)), formats).splitlines()
    lines[0] += f" Δ {first} | Δ {last} |"
    lines[1] += "---|---|"
    for i, line in enumerate(lines[2:], start=2):
        name = line.split(" | ")[0][2:]
        lines[i] += f" {marks.get((name, first), '')} | {marks.get((name, last), '')} |"
    steps = grids[data]["base"]["steps"]
    return f"**{data}**, {steps} steps, seeds {sorted({r['seed'] for r in rows})}\n\n" + "\n".join(lines)


for data in DATASETS:
    display(Markdown(table(data)))
display(Markdown("Mean ± standard deviation over seeds; Δ: difference of means to the baseline (DCGAN's Adam), "
                 "`*` where Welch's t-test gives p < 0.05. MNIST: the 5,000-digit subset, 2,000 samples per run, "
                 "the digit classifier of \"How we measure\"."))
""")

code(r"""
fig, axes = plt.subplots(3, 1, figsize=(12, 10), layout="constrained")
for ax, (data, metric) in zip(axes, [("ring8", "modes"), ("grid25", "modes"), ("mnist", "frechet")]):
    viz.plot_results(results[data]["rows"], metric, ax=ax, title=f"{data}: {metric}")
""")

md(r"""
## The cost of a step

Adam keeps two extra tensors per parameter, momentum one, Adadelta two; the work per step differs a little, and
on a small MLP the optimiser is a visible share of the step. Timed here on the chapter's machine: each preset
trains the MNIST MLP for a warm-up, then the presets take turns (interleaved, so that a noisy machine slows all
of them alike) for several repeats; the table gives the median time per step and its ratio to the baseline.
""")

code(r"""
timers = {name: Trainer(TrainConfig(dataset="mnist", steps=10**6, device=DEVICE, seed=0, progress=False,
                                    optim={"preset": name})) for name in OPTIM_PRESETS}
for trainer in timers.values():
    trainer.fit(steps=5)  # warm-up
per_step = {name: [] for name in timers}
for _ in range(TIMING_REPEATS):
    for name, trainer in timers.items():
        t0 = time.perf_counter()
        trainer.fit(steps=trainer.step_count + TIMING_STEPS)
        per_step[name].append((time.perf_counter() - t0) / TIMING_STEPS)
base = statistics.median(per_step["dcgan"])
lines = ["| preset | ms per step (median) | ratio to dcgan |", "|---|---|---|"]
for name, times in per_step.items():
    med = statistics.median(times)
    lines.append(f"| `{name}` | {1000 * med:.1f} | {med / base:.2f} |")
display(Markdown("\n".join(lines) + f"\n\nMNIST MLP, batch 128, {TIMING_REPEATS} interleaved repeats of "
                 f"{TIMING_STEPS} steps, on {DEVICE} ({torch.get_num_threads()} threads)."))
""", tags=["nbval-ignore-output"])

md(r"""
## Does Adam converge faster than SGD?

"Converges" needs a measure. We train `ring8` with DCGAN's Adam, the source's Adam, plain SGD and SGD with
momentum, 3 seeds each, and evaluate the modes captured and the high-quality fraction on 2,500 samples every
150 steps, alongside $D(x)$ and $D(G(z))$ over training.
""")

code(r"""
CURVES = ["dcgan", "source-adam", "sgd", "momentum"]
every = max(1, RING_STEPS // 20)
curves, histories = {}, {}
for name in CURVES:
    for seed in CURVE_SEEDS:
        trainer = Trainer(TrainConfig(dataset="ring8", steps=RING_STEPS, device=DEVICE, seed=seed, progress=False,
                                      optim={"preset": name}))
        trainer.fit(snapshot_every=every, snapshot_n=2500)
        curves[(name, seed)] = [(step, mode_coverage(x, "ring8")) for step, x in trainer.snapshots]
        histories[(name, seed)] = trainer.history

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
for name in CURVES:
    steps = [s for s, _ in curves[(name, CURVE_SEEDS[0])]]
    modes = np.array([[m.modes for _, m in curves[(name, seed)]] for seed in CURVE_SEEDS])
    hq = np.array([[m.high_quality for _, m in curves[(name, seed)]] for seed in CURVE_SEEDS])
    for ax, values in zip(axes, (modes, hq)):
        (line,) = ax.plot(steps, values.mean(0), label=name)
        ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.15)
axes[0].set(xlabel="step", ylabel="modes captured (of 8)", title="ring8: modes over training")
axes[1].set(xlabel="step", ylabel="high-quality fraction", title="ring8: sample quality over training")
axes[0].legend()
""")

code(r"""
fig, axes = plt.subplots(1, len(CURVES), figsize=(3.2 * len(CURVES), 3.0), sharey=True, layout="constrained")
for ax, name in zip(axes, CURVES):
    cols = viz.history_columns(histories[(name, CURVE_SEEDS[0])])
    window = max(1, RING_STEPS // 60)
    ax.plot(cols["step"], viz.moving_average(cols["d_real"], window), label="D(x)")
    ax.plot(cols["step"], viz.moving_average(cols["d_fake"], window), label="D(G(z))")
    ax.set(title=name, xlabel="step", ylim=(0, 1))
axes[0].set_ylabel(f"moving average ({window} steps)")
axes[0].legend()
""")

md(r"""
The shaded bands span the 3 seeds. Read them with the Dirac-GAN in mind: no optimiser drives $D(x)$ and
$D(G(z))$ to a fixed point; they differ in how fast the game moves and how far it swings.

## Verdict

VERDICT_PLACEHOLDER

## Summary

- Adam's update is five lines; written out, it matches `torch.optim.Adam` to float rounding on a real GAN.
- A GAN is a game whose gradient field rotates around the equilibrium: gradient descent circles or spirals out
  instead of converging, and momentum makes that worse (Dirac-GAN).
- `gantricks.optim` builds every `torch.optim` optimiser with separate learning rates (TTUR) and named, sourced
  presets; the tables above measure all of them on three datasets over 5 seeds.

## Exercises

1. Draw the Dirac-GAN with `dirac_trajectories(lr=0.5)` and with `lr=0.01`. How does the outward spiral of
   simultaneous gradient descent depend on the step size, and what does that suggest about learning rates in
   GANs?
2. Try `optim={"preset": "ttur-sagan"}` with $\beta_1 = 0.5$ instead of 0 (`optim={"preset": "ttur-sagan",
   "betas": (0.5, 0.9)}`) on `grid25` for 3 seeds. Does momentum in Adam matter here?
3. The source recommends $\beta_2 = 0.997$ instead of Adam's 0.999. How many steps does each average over
   (roughly $1 / (1 - \beta_2)$)? Compare the `source-adam` and `torch-default` rows: can the tables tell them
   apart?

```{admonition} Solutions
:class: dropdown
1. Each simultaneous step multiplies $\theta^2 + \psi^2$ by $1 + h^2 f'^2$, so the spiral's growth per step grows
   with $h^2$: at $h = 0.01$ the path looks like the continuous circle for hundreds of steps, at $h = 0.5$ it
   leaves quickly. Small steps do not make the game converge; they make the divergence slow. This is one reason
   GAN learning rates are small (DCGAN's $2 \cdot 10^{-4}$) compared with supervised training.
2. Run `run_grid` over the two configs (see "How we measure") and compare with `versus_baseline`; with 3 seeds
   only a large difference will show. SAGAN and BigGAN chose $\beta_1 = 0$, arguing that momentum hurts in a
   game, which the Dirac-GAN's momentum path illustrates.
3. About 333 steps versus 1,000. The difference changes how fast $v_t$ follows a change in gradient scale; the two
   rows of the tables differ by less than their standard deviations where there is no `*`, i.e. five seeds cannot
   tell the two apart on these problems.
```

The references are collected on the [introduction's page](intro.md).
""")

nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
})
nbformat.write(nb, "book/03_optimizers.ipynb")
print("wrote", len(cells), "cells")
