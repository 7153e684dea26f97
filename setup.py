"""mdistiller-ddkd: DDKD and its baselines with mdistiller's interfaces."""

import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
#: optional extras for users; the test extra installs them all, so CI runs (never skips) the tests that need them
EXTRAS = {
    "plot": ["matplotlib"],
    "wandb": ["wandb"],
    "viz": ["scikit-learn", "matplotlib"],
    "export": ["onnx", "onnxscript", "onnxruntime"],
    "timm": ["timm>=1.0"],  # timm/<name> teachers and students (docs/usage.md "timm models")
}
TEST = ["pytest", "pytest-xdist", "ruff", "import-linter", "scipy"]  # scipy: the oracle of suite.student_t


def _read(name: str) -> str:
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


setup(
    name="mdistiller-ddkd",
    version="0.1.0",
    description="Decoupled knowledge distillation with a diffusion denoiser (DDKD) and its baselines, "
    "mdistiller-compatible, on CPU and GPU",
    long_description=_read("README.md"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["mdistiller_ddkd", "mdistiller_ddkd.*"]) + ["mdistiller_ddkd.configs"],
    # the repository's configs/ ship as package data, addressable as configs/<...>.yaml from any folder
    package_dir={"mdistiller_ddkd.configs": "configs"},
    package_data={"mdistiller_ddkd.configs": ["*/*.yaml", "*/*/*.yaml", "*/*/*/*.yaml"],
                  "mdistiller_ddkd": ["data/*.json", "data/suites/*.yaml"]},
    install_requires=["torch>=2.0", "torchvision>=0.15", "yacs", "tensorboardX", "tqdm", "numpy", "pyyaml"],
    extras_require={**EXTRAS, "test": TEST + sorted({p for extra in EXTRAS.values() for p in extra})},
    entry_points={
        "console_scripts": [
            "ddkd-train=mdistiller_ddkd.cli.train:main",
            "ddkd-diagnose=mdistiller_ddkd.cli.diagnose:main",
            "ddkd-visualize=mdistiller_ddkd.cli.visualize:main",
            "ddkd-export=mdistiller_ddkd.cli.export:main",
            "ddkd-eval=mdistiller_ddkd.cli.eval:main",
            "ddkd-suite=mdistiller_ddkd.cli.suite:main",
            "ddkd-table=mdistiller_ddkd.cli.table:main",
            "ddkd-download-teachers=mdistiller_ddkd.cli.download_teachers:main",
            "ddkd-bench=mdistiller_ddkd.cli.bench_step:main",
            "ddkd-bench-epoch=mdistiller_ddkd.cli.bench_epoch:main",
        ]
    },
)
