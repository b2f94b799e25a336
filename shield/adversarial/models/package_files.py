"""Where third-party pretrained weights live (see :mod:`shield.adversarial.zoo.packages`).

Re-exported here for the ports; the model zoo imports the torch-free original so that
listing and verifying models never loads torch.
"""

from shield.adversarial.zoo.packages import NODE_MODULES, PackageMissingError, npm_file, pypi_file

__all__ = ["PackageMissingError", "pypi_file", "npm_file", "NODE_MODULES"]
