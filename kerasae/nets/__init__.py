"""Networks (core layer): encoder and decoder builders behind a registry, and shared layers.

    base.py         Architecture: what a network builder provides
    registry.py     the architectures by name, fed by `kerasae.architectures` entry points
    mlp.py, conv.py kerasae's own: dense, and strided/transposed convolutions
    builders.py     build_encoder, build_decoder, features, check_architecture by name
    quantizer.py    VectorQuantizer, the VQ-VAE bottleneck (van den Oord et al. 2017)
    made.py         MADE, the masked autoregressive network of the flows (Germain et al. 2015)
    flows.py        planar, radial and IAF flows of a posterior and their log-determinants

A family builds its networks here (or takes the user's own). Importing this package
imports nothing. May import the base only.
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.nets.builders: features build_encoder build_decoder check_architecture
    kerasae.nets.conv: default_filters resolve_filters code_channels code_grid CODES
        MAX_DEFAULT_WIDTH MIN_DEFAULT_WIDTH
    kerasae.nets.base: Architecture
    kerasae.nets.registry: ARCHITECTURES register_architecture architecture
    kerasae.nets.quantizer: VectorQuantizer
    kerasae.nets.made: MADE
    kerasae.nets.flows: FlowStack PlanarFlow RadialFlow IAFStep
""",
)
