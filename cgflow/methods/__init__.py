"""Training methods, each declared once here.

A method is one module under ``cgflow/methods/`` that holds its settings (a
``SETTINGS`` dataclass, the single source of its defaults, bounds and schema) and its
``train(problem, settings, key) -> Trained`` function (see
:mod:`cgflow.methods.base`). Its line in ``REGISTRY`` declares what it needs and what
it produces; the config schema's method names, the config checks, the dispatch of
``cgflow train``, and the Snakemake wildcard constraints and input functions are all
derived from this table. Adding a method is one module and one line here.

This module imports no JAX (the Snakefile and the OpenMM-side steps read it); a
method's module, which does, is imported only when its settings or its training are
needed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

ENERGY, GENERATOR = "energy", "generator"
DATA_KINDS = ("cg", "none")
TEMPERATURE_KINDS = ("one", "training", "nearest")


@dataclass(frozen=True)
class Method:
    """What a training method is, needs and produces.

    Attributes:
      name: the method's name in config, paths and the ``method`` wildcard.
      module: the module holding ``SETTINGS`` (its settings class) and ``train``.
      doc: one line for the schema and ``--help``.
      data: ``cg``: learns from the mapped CG reference at one temperature;
        ``none``: uses no simulation data.
      network: True when a network is trained on top of the prior (False: the
        prior alone).
      start_from: a method whose model of the same run this one starts from.
      per_dt: trains at the CG time step it is simulated at: one model per dt.
      aa_energy: needs the all-atom energy function.
      produces: ``energy`` (simulated by the CG simulator) or ``generator``
        (sampled directly).
      reads: config blocks of the system entry the training reads besides the
        system's definition; ``block.key`` names one key of a block.
      temperatures: ``one``: a model per temperature, trained on that temperature's
        data; ``training``: one temperature-aware model trained on the data of all
        the system's training temperatures (``temperatures`` less
        ``held_out_temperatures``), simulated and scored at every temperature;
        ``nearest``: not trained, the ``model_of`` method's model of the nearest
        training temperature, simulated and scored at the held-out temperatures
        (what no transfer gives).
      aa_energies: trains on the all-atom potential energies of the frames too.
      model_of: for ``temperatures="nearest"``, the method whose model is used.
    """

    name: str
    module: str
    doc: str
    data: str = "cg"
    network: bool = True
    start_from: str | None = None
    per_dt: bool = False
    aa_energy: bool = False
    produces: str = ENERGY
    reads: tuple[str, ...] = ("network",)
    temperatures: str = "one"
    aa_energies: bool = False
    model_of: str | None = None

    def __post_init__(self):
        if self.data not in DATA_KINDS:
            raise ValueError(f"method {self.name}: data {self.data!r} not in {DATA_KINDS}")
        if self.produces not in (ENERGY, GENERATOR):
            raise ValueError(f"method {self.name}: produces {self.produces!r}")
        if self.temperatures not in TEMPERATURE_KINDS:
            raise ValueError(f"method {self.name}: temperatures {self.temperatures!r}")
        if (self.temperatures == "nearest") != (self.model_of is not None):
            raise ValueError(f"method {self.name}: model_of goes with temperatures='nearest'")

    @property
    def trained(self) -> bool:
        """Whether the method trains a model of its own (else it uses ``model_of``'s)."""
        return self.model_of is None

    def implementation(self):
        """The method's module: ``SETTINGS`` and ``train``, and for a generator
        (``produces="generator"``) ``description``, ``load_generator``,
        ``bound_terms`` and ``log_z_and_ess`` (imports JAX)."""
        return importlib.import_module(self.module)

    @property
    def settings_class(self):
        """The settings class: the built-in methods' from :mod:`cgflow.methods.options`
        (no JAX import), any other method's from its module's ``SETTINGS``."""
        from cgflow.methods import options

        cls = options.BY_MODULE.get(self.module) or self.implementation().SETTINGS
        if not issubclass(cls, options.MethodSettings):
            raise TypeError(
                f"method {self.name}: {self.module}.SETTINGS must subclass "
                "cgflow.methods.options.MethodSettings"
            )
        return cls

    def settings(self, values: dict | None):
        """The method's settings from its config block (errors name ``methods.<name>``)."""
        return self.settings_class.from_dict(values, f"methods.{self.name}")

    @property
    def train(self):
        return self.implementation().train


# Integrator settings RE-type methods read: changing the run length of the CG
# simulations must not retrain them.
_INTEGRATOR = ("simulation.thermostat", "simulation.friction")

REGISTRY: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "prior",
            "cgflow.methods.prior",
            "the fitted prior alone, no network: the baseline a learned model must beat",
            network=False,
            reads=(),
        ),
        Method("fm", "cgflow.methods.fm", "prior + network by force matching"),
        Method(
            "re",
            "cgflow.methods.re",
            "prior + network by relative entropy minimisation with reweighting, from the "
            "prior, trained at each CG time step",
            per_dt=True,
            reads=("network", *_INTEGRATOR),
        ),
        Method(
            "fm_re",
            "cgflow.methods.re",
            "relative entropy minimisation started from the FM model of the same run",
            per_dt=True,
            start_from="fm",
            reads=("network", *_INTEGRATOR),
        ),
        Method(
            "em",
            "cgflow.methods.em",
            "energy matching: a free energy A(R, kT) on the mapped forces and the all-atom "
            "energies of all training temperatures",
            temperatures="training",
            aa_energies=True,
        ),
        Method(
            "fm_nearest",
            "cgflow.methods.nearest",
            "the fm model of the nearest training temperature, run at a held-out one (no transfer)",
            temperatures="nearest",
            model_of="fm",
            reads=(),
        ),
        Method(
            "rkl",
            "cgflow.methods.rkl",
            "data-free: a latent-variable generator fitted by reverse KL to the all-atom "
            "Boltzmann density, no simulation data; sampled, not simulated",
            data="none",
            network=False,
            aa_energy=True,
            produces=GENERATOR,
            reads=(),
        ),
        Method(
            "rkl_flow",
            "cgflow.methods.rkl_flow",
            "data-free: a normalizing flow (affine couplings) fitted by reverse KL to the "
            "all-atom Boltzmann density; exact density, no encoder bound; sampled",
            data="none",
            network=False,
            aa_energy=True,
            produces=GENERATOR,
            reads=(),
        ),
    )
}


def get(name: str) -> Method:
    """The registered method ``name``; ValueError listing the names allowed."""
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; allowed: {sorted(REGISTRY)}")
    return REGISTRY[name]


def names(**declared) -> list[str]:
    """Names of the registered methods whose declarations match, e.g.
    ``names(per_dt=True)``."""
    return [
        m.name for m in REGISTRY.values() if all(getattr(m, k) == v for k, v in declared.items())
    ]
