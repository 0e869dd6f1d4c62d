"""The CDVAE family (Xie et al., ICLR 2022): a variational autoencoder whose decoder is a score network,
sampled by annealed Langevin dynamics. ``model.py`` holds the network and its loss, ``langevin.py`` the
sampler. No Streamlit here."""
from .langevin import LangevinConfig, LangevinRun, LangevinStep, generate_from_prior, langevin_decode, reconstruct
from .model import CDVAE, FAMILY, CDVAEConfig, CDVAELossTerms, CDVAEProcess, Decoded, composition_types

__all__ = ["CDVAE", "FAMILY", "CDVAEConfig", "CDVAELossTerms", "CDVAEProcess", "Decoded", "LangevinConfig",
           "LangevinRun", "LangevinStep", "composition_types", "generate_from_prior", "langevin_decode", "reconstruct"]
