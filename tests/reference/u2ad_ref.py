#!/usr/bin/python3
"""u2ad_ref: Cordscope's own PyTorch implementation of the U2AD EdgeMAE network.

It follows the engine contract (the network of DESIGN.md "The model", as src/engine/
cs-model.h documents it) line by line, so the C engine can be checked against it: the
same parameter names, shapes and order, explicit per-patch masks (0 visible, 1 masked,
2 dropped context), the weighted masked loss with the Sobel edge target, and
torch.optim.Adam.
It also reads and writes safetensors in plain Python (struct + json + numpy), since the
`safetensors` package is not packaged for Debian 12.
"""

import json
import math
import os
import struct
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CONFIG_KEYS = ("img_size", "patch", "in_chans", "enc_dim", "enc_depth", "enc_heads",
               "dec_dim", "dec_depth", "dec_heads", "mlp_ratio", "mask_ratio",
               "context_margin")

REFERENCE_CONFIG = OrderedDict(img_size=256, patch=8, in_chans=1, enc_dim=128, enc_depth=12,
                               enc_heads=16, dec_dim=64, dec_depth=8, dec_heads=8,
                               mlp_ratio=4.0, mask_ratio=0.75, context_margin=-1)

PATCH_VISIBLE, PATCH_MASKED, PATCH_DROPPED = 0, 1, 2

ADAM_LR, ADAM_BETAS, ADAM_EPS = 3e-3, (0.9, 0.95), 1e-8
EDGE_LOSS_WEIGHT = 0.1


def make_config(**overrides):
    config = OrderedDict(REFERENCE_CONFIG)
    for key, value in overrides.items():
        if key not in config:
            raise KeyError("unknown config key %r" % key)
        config[key] = value
    return config


# ---------------------------------------------------------------------------------------
# Position embeddings: fixed 2-D sin-cos; first half of the channels the column, second
# half the row; the class token gets zeros.

def sincos_1d(dim, positions):
    """[len(positions), dim]: dim/2 sines then dim/2 cosines of pos * omega_i."""
    half = dim // 2
    omega = 1.0 / (10000.0 ** (np.arange(half, dtype=np.float64) / half))
    angles = np.outer(np.asarray(positions, dtype=np.float64), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(dim, grid):
    """[grid*grid, dim] for patch p = prow*grid + pcol."""
    assert dim % 4 == 0, "position embedding dim must be a multiple of 4"
    prow, pcol = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    col_part = sincos_1d(dim // 2, pcol.reshape(-1))
    row_part = sincos_1d(dim // 2, prow.reshape(-1))
    return np.concatenate([col_part, row_part], axis=1)


# ---------------------------------------------------------------------------------------
# The network. Module and attribute names give exactly the contract's state_dict names.

class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        assert dim % heads == 0
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, key_valid):
        # x [B, T, D]; key_valid [B, T] bool: padding tokens are never attended to.
        batch, tokens, dim = x.shape
        head_dim = dim // self.heads
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)            # each [B, heads, T, hd]
        # Scale q, not the [T, T] scores (as timm does): fewer multiplies, same maths.
        logits = (q * (1.0 / math.sqrt(head_dim))) @ k.transpose(-2, -1)
        if not bool(key_valid.all()):
            logits = logits.masked_fill(~key_valid[:, None, None, :], float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))             # exact (erf) GELU


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))   # as the engine: (int) (dim * ratio)

    def forward(self, x, key_valid):
        x = x + self.attn(self.norm1(x), key_valid)
        return x + self.mlp(self.norm2(x))


class Head(nn.Module):
    def __init__(self, dim, out):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.fc = nn.Linear(dim, out)

    def forward(self, x):
        return torch.sigmoid(self.fc(self.norm(x)))


class U2AD(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = OrderedDict(config)
        c = self.config
        assert c["in_chans"] == 1, "the reference handles one channel"
        assert c["img_size"] % c["patch"] == 0
        enc, dec, pp = c["enc_dim"], c["dec_dim"], c["patch"] * c["patch"]
        self.grid = c["img_size"] // c["patch"]
        # Parameters before modules: state_dict order is then the contract's order.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, enc))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec))
        self.patch_embed = nn.Linear(pp, enc)
        self.blocks = nn.ModuleList(Block(enc, c["enc_heads"], c["mlp_ratio"])
                                    for _ in range(c["enc_depth"]))
        self.norm = nn.LayerNorm(enc, eps=1e-5)
        self.decoder_embed = nn.Linear(enc, dec)
        self.decoder_blocks = nn.ModuleList(Block(dec, c["dec_heads"], c["mlp_ratio"])
                                            for _ in range(c["dec_depth"]))
        self.head_img = Head(dec, pp)
        self.head_edge = Head(dec, pp)
        self.register_buffer("pos_enc", torch.tensor(sincos_2d(enc, self.grid)),
                             persistent=False)
        self.register_buffer("pos_dec", torch.tensor(sincos_2d(dec, self.grid)),
                             persistent=False)
        self.init_mae()

    def init_mae(self, generator=None):
        """MAE init: xavier_uniform Linear weights, zero biases, N(0, 0.02) tokens."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    fan_out, fan_in = module.weight.shape
                    bound = math.sqrt(6.0 / (fan_in + fan_out))
                    module.weight.uniform_(-bound, bound, generator=generator)
                    module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
            self.cls_token.normal_(0.0, 0.02, generator=generator)
            self.mask_token.normal_(0.0, 0.02, generator=generator)

    # -- data layout ----------------------------------------------------------------------
    def patchify(self, images):
        """[B, 1, H, W] -> [B, N, P*P], patch p = prow*G + pcol, pixels row-major."""
        b, p, g = images.shape[0], self.config["patch"], self.grid
        x = images.reshape(b, g, p, g, p).permute(0, 1, 3, 2, 4)
        return x.reshape(b, g * g, p * p)

    def unpatchify(self, patches):
        b, p, g = patches.shape[0], self.config["patch"], self.grid
        x = patches.reshape(b, g, g, p, p).permute(0, 1, 3, 2, 4)
        return x.reshape(b, 1, g * p, g * p)

    # -- forward --------------------------------------------------------------------------
    def forward(self, images, patch_state):
        """images [B,1,H,W]; patch_state [B,N] int (0 visible, 1 masked, 2 dropped).
        Returns (pred_img, pred_edge), each [B, N, P*P]; rows of dropped patches are 0."""
        batch = images.shape[0]
        n_patches = self.grid * self.grid
        patch_state = torch.as_tensor(patch_state, dtype=torch.long, device=images.device)
        x = self.patch_embed(self.patchify(images)) + self.pos_enc.to(images.dtype)

        # Encoder input: class token + visible patches in ascending order, padded per batch.
        kept = [torch.nonzero(patch_state[b] == PATCH_VISIBLE).flatten() for b in range(batch)]
        enc_len = 1 + max(len(k) for k in kept)
        enc_dim = x.shape[-1]
        rows, valid = [], torch.zeros(batch, enc_len, dtype=torch.bool)
        for b in range(batch):
            seq = torch.cat([self.cls_token[0].to(x.dtype), x[b, kept[b]]], dim=0)
            valid[b, :seq.shape[0]] = True
            rows.append(F.pad(seq, (0, 0, 0, enc_len - seq.shape[0])))
        h = torch.stack(rows)
        for block in self.blocks:
            h = block(h, valid)
        h = self.decoder_embed(self.norm(h))

        # Decoder input: class token + every non-dropped patch; visible ones from the
        # encoder, masked ones the mask token; then the decoder position embedding.
        dec_dim = h.shape[-1]
        shown = [torch.nonzero(patch_state[b] != PATCH_DROPPED).flatten() for b in range(batch)]
        dec_len = 1 + max(len(s) for s in shown)
        rows, dvalid = [], torch.zeros(batch, dec_len, dtype=torch.bool)
        for b in range(batch):
            full = self.mask_token[0].to(h.dtype).expand(n_patches, dec_dim)
            full = full.index_copy(0, kept[b], h[b, 1:1 + len(kept[b])])
            full = full + self.pos_dec.to(h.dtype)
            seq = torch.cat([h[b, :1], full[shown[b]]], dim=0)
            dvalid[b, :seq.shape[0]] = True
            rows.append(F.pad(seq, (0, 0, 0, dec_len - seq.shape[0])))
        d = torch.stack(rows)
        for block in self.decoder_blocks:
            d = block(d, dvalid)
        img_tokens, edge_tokens = self.head_img(d[:, 1:]), self.head_edge(d[:, 1:])

        pp = img_tokens.shape[-1]
        pred_img = images.new_zeros(batch, n_patches, pp)
        pred_edge = images.new_zeros(batch, n_patches, pp)
        pred_img = torch.stack([pred_img[b].index_copy(0, shown[b], img_tokens[b, :len(shown[b])])
                                for b in range(batch)])
        pred_edge = torch.stack([pred_edge[b].index_copy(0, shown[b],
                                                          edge_tokens[b, :len(shown[b])])
                                 for b in range(batch)])
        return pred_img, pred_edge

    # -- loss -----------------------------------------------------------------------------
    def loss(self, images, patch_state, pred_img, pred_edge):
        """Returns (total, L_img, L_edge): weighted squared error on masked patches."""
        patch_state = torch.as_tensor(patch_state, dtype=torch.long, device=images.device)
        target_img = self.patchify(images)
        target_edge = self.patchify(sobel_edge(images))
        masked = (patch_state == PATCH_MASKED).to(images.dtype)           # [B, N]
        g = self.grid
        weight = 1.0 + F.avg_pool2d(masked.reshape(-1, 1, g, g), 3, stride=1, padding=1,
                                    count_include_pad=True).reshape(masked.shape)
        count = masked.sum(dim=1)
        # Items with no masked patch have no loss and are left out of the batch mean.
        has_loss = count > 0
        assert bool(has_loss.any()), "no batch item has a masked patch"

        def masked_mean(pred, target):
            patch_err = (weight * ((pred - target) ** 2).mean(dim=-1))     # [B, N]
            per_item = (patch_err * masked).sum(dim=1)[has_loss] / count[has_loss]
            return per_item.mean()

        l_img = masked_mean(pred_img, target_img)
        l_edge = masked_mean(pred_edge, target_edge)
        return l_img + EDGE_LOSS_WEIGHT * l_edge, l_img, l_edge


def sobel_edge(images):
    """Sobel magnitude of [B,1,H,W] with replicate padding, clamped to <= 1."""
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=images.dtype)
    kernels = torch.stack([gx, gx.t()]).unsqueeze(1)                      # [2,1,3,3]
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    grad = F.conv2d(padded, kernels)                                      # cross-correlation
    return torch.sqrt(grad[:, :1] ** 2 + grad[:, 1:] ** 2).clamp(max=1.0)


# ---------------------------------------------------------------------------------------
# Masks

def roi_patches(roi_mask, patch):
    """[H, W] bool ROI -> [N] bool: a patch is ROI if any of its pixels is."""
    h, w = roi_mask.shape
    g_r, g_c = h // patch, w // patch
    return roi_mask.reshape(g_r, patch, g_c, patch).any(axis=(1, 3)).reshape(-1)


def random_patch_state(roi_mask, config, rng):
    """Random ROI masking: R - int(R * (1 - mask_ratio)) of the R ROI patches masked
    (MAE's len_keep rule, as the engine), context kept or,
    with context_margin M >= 0, dropped beyond Chebyshev distance M from the ROI."""
    patch, grid = config["patch"], config["img_size"] // config["patch"]
    roi = roi_patches(np.asarray(roi_mask, dtype=bool), patch)
    state = np.zeros(grid * grid, dtype=np.int64)
    margin = config["context_margin"]
    if margin >= 0:
        rr, cc = np.divmod(np.arange(grid * grid), grid)
        roi_r, roi_c = rr[roi], cc[roi]
        for p in np.flatnonzero(~roi):
            dist = np.max(np.stack([np.abs(roi_r - rr[p]), np.abs(roi_c - cc[p])]), axis=0)
            if dist.size == 0 or dist.min() > margin:
                state[p] = PATCH_DROPPED
    roi_idx = np.flatnonzero(roi)
    n_mask = len(roi_idx) - int(len(roi_idx) * (1.0 - config["mask_ratio"]))
    state[rng.choice(roi_idx, size=n_mask, replace=False)] = PATCH_MASKED
    return state


def make_adam(model):
    return torch.optim.Adam(model.parameters(), lr=ADAM_LR, betas=ADAM_BETAS, eps=ADAM_EPS,
                            weight_decay=0.0)


def matmul_flops(config, n_kept, n_dec, batch=1, backward=False):
    """2 x multiply-adds of every matmul (attention's included) for one forward pass
    (x3 with backward). n_kept: encoder tokens incl. class; n_dec: decoder tokens incl."""
    c = config
    pp = c["patch"] * c["patch"]

    def blocks(dim, depth, tokens):
        hidden = int(dim * c["mlp_ratio"])
        per = tokens * (3 * dim * dim + dim * dim + 2 * dim * hidden) + 2 * tokens * tokens * dim
        return depth * per

    madds = (n_kept - 1) * pp * c["enc_dim"] + blocks(c["enc_dim"], c["enc_depth"], n_kept)
    madds += n_kept * c["enc_dim"] * c["dec_dim"]
    madds += blocks(c["dec_dim"], c["dec_depth"], n_dec) + 2 * (n_dec - 1) * c["dec_dim"] * pp
    return 2 * madds * batch * (3 if backward else 1)


# ---------------------------------------------------------------------------------------
# safetensors in plain Python (F32 only, as our files)

def safetensors_write(path, tensors, metadata=None):
    """tensors: ordered name -> array-like; written F32 in the given order, header padded
    with spaces to a multiple of 8, atomically (temp file + fsync + rename)."""
    header, blobs, offset = OrderedDict(), [], 0
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        array = np.ascontiguousarray(np.asarray(value, dtype="<f4"))
        blob = array.tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def safetensors_read(path):
    """Returns (OrderedDict name -> float32 numpy array in file order, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: truncated (no header length)" % path)
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("%s: header length %d beyond the file" % (path, n))
    header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    metadata = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = OrderedDict()
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if info["dtype"] != "F32":
            raise ValueError("%s: tensor %s has dtype %s, not F32" % (path, name, info["dtype"]))
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        if end > len(body) or end - begin != 4 * count:
            raise ValueError("%s: tensor %s offsets out of range" % (path, name))
        tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(info["shape"]).copy()
    return tensors, metadata


def model_tensors(model):
    """Parameters in contract order as float32 numpy arrays."""
    return OrderedDict((k, v.detach().to(torch.float32).cpu().numpy())
                       for k, v in model.state_dict().items())


def model_metadata(config, **extra):
    meta = OrderedDict(format="cordscope-u2ad", version="1",
                       config=json.dumps(OrderedDict((k, config[k]) for k in CONFIG_KEYS)))
    meta.update({k: str(v) for k, v in extra.items()})
    return meta


def load_model(path, dtype=torch.float64):
    tensors, metadata = safetensors_read(path)
    if metadata.get("format") != "cordscope-u2ad" or metadata.get("version") != "1":
        raise ValueError("%s: not a cordscope-u2ad version 1 file" % path)
    config = make_config(**json.loads(metadata["config"]))
    model = U2AD(config).to(dtype)
    model.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in tensors.items()},
                          strict=True)
    return model
