"""ONNX: the whole actor (encoder, T unrolled timesteps, decoder) as one graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from neurodeploy.errors import ExportError


def export_onnx(actor, obs: torch.Tensor, path: Path) -> dict:
    """Write ``policy.onnx`` (input ``obs`` [B, obs_dim] -> ``action`` [B, act_dim]) and check it
    against torch in onnxruntime on ``obs``."""
    import onnxruntime as ort

    actor.eval()
    try:
        with torch.no_grad():
            torch.onnx.export(
                actor,
                (obs[:1],),
                str(path),
                input_names=["obs"],
                output_names=["action"],
                dynamic_axes={"obs": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {str(exc).splitlines()[0][:300]}") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["action"], {"obs": obs.numpy()})[0]
    with torch.no_grad():
        want = actor(obs).numpy()
    err = np.abs(got - want)
    # float rounding moves an action by ~1e-7 of its range; one spike that differs moves it by
    # a decoder weight (~1e-2): the check refuses the latter, per action dimension
    relative = float((err / actor.scale.half_range.numpy()).max())
    return {
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
        "max_error_over_half_range": relative,
        "tolerance": TOLERANCE,
        "within_tolerance": relative <= TOLERANCE,
    }


TOLERANCE = 1e-4  # the largest action error torch_vs_onnx accepts, over the half-range
