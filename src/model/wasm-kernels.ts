/**
 * Training kernels for the tfjs 4.22 wasm backend: the ones it lacks, and faster
 * replacements for the ones that make training on it slow.
 *
 * The wasm backend ships every kernel a CNN needs for inference, and most of
 * what it needs for training, but not `Conv2DBackpropFilter` (the gradient of
 * conv2d with respect to its filter), so `model.fit` of any model with a
 * conv2d layer fails with "Kernel 'Conv2DBackpropFilter' not registered for
 * backend 'wasm'". This module registers it, built out of wasm's own kernels
 * (so it runs in XNNPACK, and never through the engine: no tensors are
 * created, only backend data that is freed before the kernel returns).
 *
 * The filter gradient is itself a convolution:
 *   dW[fh,fw,ci,co] = sum_{b,oh,ow} xpad[b, oh*sh + fh, ow*sw + fw, ci] * dy[b,oh,ow,co]
 * With x transposed to [CI, H, W, B] as the input ("batch" CI, "channels" B)
 * and dy transposed to [OH, OW, B, CO] as the filter, a stride-1 convolution
 * dilated by the forward stride, padded top/left like the forward pass and
 * bottom/right so that the output is exactly [CI, FH, FW, CO], computes dW up
 * to a final transpose to [FH, FW, CI, CO]. When that bottom/right padding
 * would be negative (rows/columns of x that the forward pass never reads), x
 * is sliced instead. (wasm's Conv2D honours dilations and explicit padding.)
 *
 * Added where missing (found by training small CNNs with tfjs-layers on wasm;
 * everything else that conv/dense/pooling/batch-norm/dropout/softmax/
 * crossentropy and the SGD/momentum/Adam/RMSProp optimizers need is there):
 *  - Conv2DBackpropFilter (conv2d): one XNNPACK convolution, as above.
 *  - DepthwiseConv2dNativeBackpropFilter / DepthwiseConv2dNativeBackpropInput
 *    (depthwiseConv2d, separableConv2d): direct loops over the wasm heap, the
 *    same arithmetic as the cpu backend; cheap next to the pointwise convs.
 *  - UnsortedSegmentSum (the gradient of gather, e.g. embeddings): a loop.
 * Replaced (the originals are kept and used as fallbacks), which together
 * make a training step of the small 28x28 CNN ~2.3x faster:
 *  - Conv2DBackpropInput: wasm's is a plain loop ~20x slower than the conv it
 *    differentiates; here it is one XNNPACK convolution (see below).
 *  - MaxPoolGrad: one pass over the windows in JavaScript (~3-5x faster).
 *  - BatchMatMul with transposed operands (a dense layer's gradients): wasm
 *    multiplies those with a plain loop; transpose first, then use XNNPACK.
 */
import {
  backend_util,
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  getKernel,
  MaxPoolGrad,
  PadV2,
  registerKernel,
  Reverse,
  Slice,
  Transpose,
  unregisterKernel,
  UnsortedSegmentSum,
  util,
  type BatchMatMulAttrs,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type DataType,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type MaxPoolGradAttrs,
  type NamedAttrMap,
  type TensorInfo,
  type UnsortedSegmentSumAttrs,
} from '@tensorflow/tfjs-core';

/** The backend name these kernels are registered for. */
export const WASM = 'wasm';

/** The subset of tfjs-backend-wasm's BackendWasm that these kernels use. */
interface WasmBackendLike {
  disposeData(dataId: object, force?: boolean): boolean;
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  /** A view (not a copy) of a tensor's data on the wasm heap; invalid after the next allocation. */
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type Shape4 = [number, number, number, number];

function wasmKernel(name: string): KernelFunc {
  const config = getKernel(name, WASM);
  if (config === undefined) {
    throw new Error(`wasm-kernels: the wasm backend has no '${name}' kernel to build on`);
  }
  return config.kernelFunc;
}

/** Runs one of wasm's own kernels on backend data (no engine, no tensors). */
function run(
  name: string,
  backend: WasmBackendLike,
  inputs: Record<string, TensorInfo>,
  attrs: object,
): TensorInfo {
  const out = wasmKernel(name)({ inputs, backend, attrs: attrs as NamedAttrMap });
  if (Array.isArray(out)) {
    throw new Error(`wasm-kernels: '${name}' returned several outputs`);
  }
  return out;
}

function pair(v: [number, number] | number): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

/**
 * dW for a channels-last conv2d (dilation 1, which is all that tfjs-core's
 * conv2d gradient supports), via one wasm (XNNPACK) Conv2D call.
 */
export const conv2DBackpropFilterWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as WasmBackendLike;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    attrs as unknown as Conv2DBackpropFilterAttrs;
  const format = backend_util.convertConv2DDataFormat(dataFormat);
  if (format !== 'channelsLast') {
    throw new Error(`wasm Conv2DBackpropFilter supports only dataFormat 'NHWC', got '${dataFormat}'`);
  }
  const info = backend_util.computeConv2DInfo(
    x.shape as Shape4,
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    format,
  );
  const {
    batchSize,
    inHeight,
    inWidth,
    inChannels,
    outHeight,
    outWidth,
    outChannels,
    filterHeight,
    filterWidth,
  } = info;
  const [sh, sw] = pair(strides);
  const { top, left } = info.padInfo;
  // The padded input must have (OH-1)*sh + FH rows; it has top + H + bottom.
  let bottom = (outHeight - 1) * sh + filterHeight - top - inHeight;
  let right = (outWidth - 1) * sw + filterWidth - left - inWidth;
  // Negative: trailing rows/columns of x that the forward pass never read.
  const usedHeight = inHeight + Math.min(0, bottom);
  const usedWidth = inWidth + Math.min(0, right);
  bottom = Math.max(0, bottom);
  right = Math.max(0, right);

  const temps: TensorInfo[] = [];
  try {
    let xs = x;
    if (usedHeight !== inHeight || usedWidth !== inWidth) {
      xs = run(
        Slice,
        be,
        { x },
        { begin: [0, 0, 0, 0], size: [batchSize, usedHeight, usedWidth, inChannels] },
      );
      temps.push(xs);
    }
    const xT = run(Transpose, be, { x: xs }, { perm: [3, 1, 2, 0] }); // [CI, H', W', B]
    temps.push(xT);
    const dyT = run(Transpose, be, { x: dy }, { perm: [1, 2, 0, 3] }); // [OH, OW, B, CO]
    temps.push(dyT);
    const convAttrs: Conv2DAttrs = {
      strides: [1, 1],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [sh, sw],
    };
    const dwT = run(Conv2D, be, { x: xT, filter: dyT }, convAttrs); // [CI, FH, FW, CO]
    temps.push(dwT);
    const expected = [inChannels, filterHeight, filterWidth, outChannels];
    if (dwT.shape.length !== 4 || dwT.shape.some((d, i) => d !== expected[i])) {
      throw new Error(
        `wasm Conv2DBackpropFilter: internal shape mismatch, got [${dwT.shape.join(',')}], expected [${expected.join(',')}]`,
      );
    }
    return run(Transpose, be, { x: dwT }, { perm: [1, 2, 0, 3] }); // [FH, FW, CI, CO]
  } finally {
    for (const t of temps) be.disposeData(t.dataId);
  }
};

function copyOut(be: WasmBackendLike, shape: number[], values: Float64Array): TensorInfo {
  const out = be.makeOutput(shape, 'float32');
  // Take the view only after the allocation (an allocation may grow the heap).
  (be.typedArrayFromHeap(out) as Float32Array).set(values);
  return out;
}

/**
 * dW for depthwiseConv2d: dW[fh,fw,c,m] = sum_{b,oh,ow} xpad[b, oh*sh + fh*dh, ow*sw + fw*dw, c] * dy[b,oh,ow,c*M+m].
 */
export const depthwiseConv2dNativeBackpropFilterWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as WasmBackendLike;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, filterShape } =
    attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = backend_util.computeConv2DInfo(
    x.shape as Shape4,
    filterShape,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const {
    batchSize: B,
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: OH,
    outWidth: OW,
    outChannels: CM,
  } = info;
  const { filterHeight: FH, filterWidth: FW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const M = CM / C;
  const acc = new Float64Array(FH * FW * CM);
  const xv = be.typedArrayFromHeap(x);
  const dyv = be.typedArrayFromHeap(dy);
  for (let b = 0; b < B; ++b) {
    for (let oh = 0; oh < OH; ++oh) {
      for (let fh = 0; fh < FH; ++fh) {
        const ih = oh * sh + fh * dh - top;
        if (ih < 0 || ih >= H) continue;
        for (let ow = 0; ow < OW; ++ow) {
          const dyOff = ((b * OH + oh) * OW + ow) * CM;
          for (let fw = 0; fw < FW; ++fw) {
            const iw = ow * sw + fw * dw - left;
            if (iw < 0 || iw >= W) continue;
            const xOff = ((b * H + ih) * W + iw) * C;
            const aOff = (fh * FW + fw) * CM;
            for (let c = 0; c < C; ++c) {
              const xc = xv[xOff + c] as number;
              for (let m = 0; m < M; ++m) {
                const k = c * M + m;
                acc[aOff + k] = (acc[aOff + k] as number) + xc * (dyv[dyOff + k] as number);
              }
            }
          }
        }
      }
    }
  }
  return copyOut(be, [FH, FW, C, M], acc);
};

/**
 * dx for depthwiseConv2d: dx[b,ih,iw,c] = sum over the (oh,ow,fh,fw) that read (ih,iw) of sum_m dy[b,oh,ow,c*M+m] * W[fh,fw,c,m].
 */
export const depthwiseConv2dNativeBackpropInputWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as WasmBackendLike;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, inputShape } =
    attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as Shape4,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const {
    batchSize: B,
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: OH,
    outWidth: OW,
    outChannels: CM,
  } = info;
  const { filterHeight: FH, filterWidth: FW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const M = CM / C;
  const acc = new Float64Array(B * H * W * C);
  const dyv = be.typedArrayFromHeap(dy);
  const wv = be.typedArrayFromHeap(filter);
  for (let b = 0; b < B; ++b) {
    for (let oh = 0; oh < OH; ++oh) {
      for (let fh = 0; fh < FH; ++fh) {
        const ih = oh * sh + fh * dh - top;
        if (ih < 0 || ih >= H) continue;
        for (let ow = 0; ow < OW; ++ow) {
          const dyOff = ((b * OH + oh) * OW + ow) * CM;
          for (let fw = 0; fw < FW; ++fw) {
            const iw = ow * sw + fw * dw - left;
            if (iw < 0 || iw >= W) continue;
            const xOff = ((b * H + ih) * W + iw) * C;
            const wOff = (fh * FW + fw) * CM;
            for (let c = 0; c < C; ++c) {
              let s = 0;
              for (let m = 0; m < M; ++m) {
                const k = c * M + m;
                s += (dyv[dyOff + k] as number) * (wv[wOff + k] as number);
              }
              acc[xOff + c] = (acc[xOff + c] as number) + s;
            }
          }
        }
      }
    }
  }
  return copyOut(be, [B, H, W, C], acc);
};

/**
 * out[s, ...] = sum of x[i, ...] over the i (indices of segmentIds, which may
 * have several dimensions, a prefix of x's) with segmentIds[i] == s; ids
 * outside [0, numSegments) are dropped, as in TensorFlow. Keeps x's dtype.
 */
export const unsortedSegmentSumWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as WasmBackendLike;
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as unknown as UnsortedSegmentSumAttrs;
  const idsRank = segmentIds.shape.length;
  if (segmentIds.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(
      `wasm UnsortedSegmentSum: segmentIds shape [${segmentIds.shape.join(',')}] must be a prefix of x shape [${x.shape.join(',')}]`,
    );
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`wasm UnsortedSegmentSum: unsupported dtype ${x.dtype}`);
  }
  const outShape = [numSegments, ...x.shape.slice(idsRank)];
  const inner = util.sizeFromShape(x.shape.slice(idsRank));
  const n = util.sizeFromShape(segmentIds.shape);
  const out = be.makeOutput(outShape, x.dtype);
  const ov = be.typedArrayFromHeap(out);
  ov.fill(0);
  const xv = be.typedArrayFromHeap(x);
  const ids = be.typedArrayFromHeap(segmentIds);
  for (let i = 0; i < n; ++i) {
    const s = ids[i] as number;
    if (s < 0 || s >= numSegments) continue;
    const o = s * inner;
    const xo = i * inner;
    for (let j = 0; j < inner; ++j) ov[o + j] = (ov[o + j] as number) + (xv[xo + j] as number);
  }
  return out;
};

/**
 * dx for a channels-last conv2d, as one XNNPACK convolution (wasm's own Conv2DBackpropInput is a
 * plain loop, ~20x slower than the forward conv it differentiates):
 *   dx = conv2d(dyd padded, W'), stride 1, with W'[p,q,co,ci] = W[FH-1-p, FW-1-q, ci, co]
 * and dyd = dy dilated by the strides (zeros between its rows/columns: a pad of a 6-D view).
 * Top/left padding FH-1-top / FW-1-left, bottom/right so that the output is [B,H,W,CI]; where
 * a padding would be negative, dyd is sliced instead. Falls back to `original` for NCHW.
 */
function conv2DBackpropInputFast(original: KernelFunc): KernelFunc {
  return (args) => {
    const be = args.backend as WasmBackendLike;
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
      args.attrs as unknown as Conv2DBackpropInputAttrs;
    const format = backend_util.convertConv2DDataFormat(dataFormat);
    if (format !== 'channelsLast' || dy.dtype !== 'float32') return original(args);
    const info = backend_util.computeConv2DInfo(
      inputShape,
      filter.shape as Shape4,
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      format,
    );
    const {
      batchSize: B,
      inHeight: H,
      inWidth: W,
      inChannels: CI,
      outHeight: OH,
      outWidth: OW,
      outChannels: CO,
    } = info;
    const { filterHeight: FH, filterWidth: FW, strideHeight: sh, strideWidth: sw } = info;
    const temps: TensorInfo[] = [];
    try {
      let d: TensorInfo = dy;
      if (sh > 1 || sw > 1) {
        // A 6-D view of dy (same data), padded after its two unit axes: [B, OH, sh, OW, sw, CO].
        const view: TensorInfo = { dataId: dy.dataId, shape: [B, OH, 1, OW, 1, CO], dtype: dy.dtype };
        const paddings = [
          [0, 0],
          [0, 0],
          [0, sh - 1],
          [0, 0],
          [0, sw - 1],
          [0, 0],
        ];
        const dilated = run(PadV2, be, { x: view }, { paddings, constantValue: 0 });
        temps.push(dilated);
        d = { dataId: dilated.dataId, shape: [B, OH * sh, OW * sw, CO], dtype: dy.dtype };
      }
      const DH = d.shape[1] as number;
      const DW = d.shape[2] as number;
      let top = FH - 1 - info.padInfo.top;
      let left = FW - 1 - info.padInfo.left;
      let bottom = H + FH - 1 - DH - top;
      let right = W + FW - 1 - DW - left;
      if (top < 0 || left < 0 || bottom < 0 || right < 0) {
        const begin = [0, Math.max(0, -top), Math.max(0, -left), 0];
        const size = [
          B,
          DH - Math.max(0, -top) - Math.max(0, -bottom),
          DW - Math.max(0, -left) - Math.max(0, -right),
          CO,
        ];
        const sliced = run(Slice, be, { x: d }, { begin, size });
        temps.push(sliced);
        d = sliced;
        top = Math.max(0, top);
        left = Math.max(0, left);
        bottom = Math.max(0, bottom);
        right = Math.max(0, right);
      }
      const reversed = run(Reverse, be, { x: filter }, { dims: [0, 1] });
      temps.push(reversed);
      const wT = run(Transpose, be, { x: reversed }, { perm: [0, 1, 3, 2] }); // [FH, FW, CO, CI]
      temps.push(wT);
      const convAttrs: Conv2DAttrs = {
        strides: [1, 1],
        pad: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations: [1, 1],
      };
      const dx = run(Conv2D, be, { x: d, filter: wT }, convAttrs);
      const expected = [B, H, W, CI];
      if (dx.shape.length !== 4 || dx.shape.some((v, i) => v !== expected[i])) {
        be.disposeData(dx.dataId);
        throw new Error(
          `wasm Conv2DBackpropInput: internal shape mismatch, got [${dx.shape.join(',')}], expected [${expected.join(',')}]`,
        );
      }
      return dx;
    } finally {
      for (const t of temps) be.disposeData(t.dataId);
    }
  };
}

/**
 * MaxPoolGrad as one pass over the windows (wasm's own is ~10x slower): each window's gradient
 * goes to its first maximum in row-major order, NaNs never being a maximum, as on the cpu backend.
 */
function maxPoolGradFast(original: KernelFunc): KernelFunc {
  return (args) => {
    const be = args.backend as WasmBackendLike;
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as MaxPoolGradAttrs;
    if (input.dtype !== 'float32' || dy.dtype !== 'float32') return original(args);
    const info = backend_util.computePool2DInfo(
      input.shape as Shape4,
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
    const { effectiveFilterHeight: FH, effectiveFilterWidth: FW, strideHeight: sh, strideWidth: sw } = info;
    const { top, left } = info.padInfo;
    const out = be.makeOutput(input.shape, 'float32');
    const dx = be.typedArrayFromHeap(out) as Float32Array;
    dx.fill(0);
    const xv = be.typedArrayFromHeap(input) as Float32Array;
    const dyv = be.typedArrayFromHeap(dy) as Float32Array;
    for (let b = 0; b < B; ++b) {
      for (let oh = 0; oh < OH; ++oh) {
        const h0 = Math.max(0, oh * sh - top);
        const h1 = Math.min(H, oh * sh - top + FH);
        for (let ow = 0; ow < OW; ++ow) {
          const w0 = Math.max(0, ow * sw - left);
          const w1 = Math.min(W, ow * sw - left + FW);
          const dyOff = ((b * OH + oh) * OW + ow) * C;
          for (let c = 0; c < C; ++c) {
            let best = -Infinity;
            let at = -1;
            for (let ih = h0; ih < h1; ++ih) {
              for (let iw = w0; iw < w1; ++iw) {
                const i = ((b * H + ih) * W + iw) * C + c;
                const v = xv[i] as number;
                if (v > best) {
                  best = v;
                  at = i;
                }
              }
            }
            if (at >= 0) dx[at] = (dx[at] as number) + (dyv[dyOff + c] as number);
          }
        }
      }
    }
    return out;
  };
}

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

/**
 * BatchMatMul with transposeA/transposeB: wasm multiplies transposed operands with a plain loop
 * (~5-7x slower than its XNNPACK path, and these are exactly the matmuls of a dense layer's
 * gradient), so transpose the operands explicitly and multiply them untransposed.
 */
function batchMatMulFast(original: KernelFunc): KernelFunc {
  return (args) => {
    const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
    if (!transposeA && !transposeB) return original(args);
    const be = args.backend as WasmBackendLike;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const temps: TensorInfo[] = [];
    try {
      let a2 = a;
      let b2 = b;
      if (transposeA) {
        a2 = run(Transpose, be, { x: a }, { perm: swapLastTwo(a.shape.length) });
        temps.push(a2);
      }
      if (transposeB) {
        b2 = run(Transpose, be, { x: b }, { perm: swapLastTwo(b.shape.length) });
        temps.push(b2);
      }
      const attrs: BatchMatMulAttrs = { transposeA: false, transposeB: false };
      return original({ inputs: { a: a2, b: b2 }, backend: be, attrs: { ...args.attrs, ...attrs } });
    } finally {
      for (const t of temps) be.disposeData(t.dataId);
    }
  };
}

const KERNELS: readonly { kernelName: string; kernelFunc: KernelFunc }[] = [
  { kernelName: Conv2DBackpropFilter, kernelFunc: conv2DBackpropFilterWasm },
  { kernelName: DepthwiseConv2dNativeBackpropFilter, kernelFunc: depthwiseConv2dNativeBackpropFilterWasm },
  { kernelName: DepthwiseConv2dNativeBackpropInput, kernelFunc: depthwiseConv2dNativeBackpropInputWasm },
  { kernelName: UnsortedSegmentSum, kernelFunc: unsortedSegmentSumWasm },
];

const REPLACEMENTS: readonly { kernelName: string; wrap: (original: KernelFunc) => KernelFunc }[] = [
  { kernelName: Conv2DBackpropInput, wrap: conv2DBackpropInputFast },
  { kernelName: MaxPoolGrad, wrap: maxPoolGradFast },
  { kernelName: BatchMatMul, wrap: batchMatMulFast },
];

/** The kernels this module adds to the wasm backend (registered only where missing). */
export const WASM_TRAINING_KERNELS: readonly string[] = KERNELS.map((k) => k.kernelName);

/** wasm kernels this module replaces with faster ones (keeping the originals as fallbacks). */
export const WASM_REPLACED_KERNELS: readonly string[] = REPLACEMENTS.map((k) => k.kernelName);

const ours = new WeakSet<KernelFunc>();
/** The wasm kernels replaced, by name, as they were registered before. */
const originals = new Map<string, KernelConfig>();

export interface RegisterWasmKernelsOptions {
  /** Also replace wasm's slow Conv2DBackpropInput, MaxPoolGrad and transposed BatchMatMul (default true). */
  replaceSlowKernels?: boolean;
}

/**
 * Registers the training kernels missing from the wasm backend and (unless told not to) replaces
 * its slow training kernels. Idempotent: a kernel already registered for 'wasm' (by an earlier
 * call, other code, or a later tfjs that ships it) is left alone, and a kernel is replaced only
 * once. Replacements need the wasm package imported first (its kernels are what they wrap); the
 * added kernels do not. Works before or after the wasm backend initializes. Returns the names of
 * the kernels this call registered or replaced.
 */
export function registerWasmTrainingKernels(options: RegisterWasmKernelsOptions = {}): string[] {
  const changed: string[] = [];
  for (const k of KERNELS) {
    if (getKernel(k.kernelName, WASM) !== undefined) continue;
    registerKernel({ kernelName: k.kernelName, backendName: WASM, kernelFunc: k.kernelFunc });
    ours.add(k.kernelFunc);
    changed.push(k.kernelName);
  }
  if (options.replaceSlowKernels ?? true) {
    for (const r of REPLACEMENTS) {
      const existing = getKernel(r.kernelName, WASM);
      if (existing === undefined || ours.has(existing.kernelFunc)) continue;
      const kernelFunc = r.wrap(existing.kernelFunc);
      ours.add(kernelFunc);
      originals.set(r.kernelName, existing);
      unregisterKernel(r.kernelName, WASM);
      // Keep the original setupFunc/disposeFunc: the original kernelFunc (the fallback) needs them.
      registerKernel({ ...existing, kernelFunc });
      changed.push(r.kernelName);
    }
  }
  return changed;
}

/**
 * Puts back the wasm kernels that registerWasmTrainingKernels replaced (to measure or rule out
 * the replacements); the added kernels stay. Returns the names of the kernels restored.
 */
export function restoreReplacedWasmKernels(): string[] {
  const restored: string[] = [];
  for (const [name, config] of originals) {
    unregisterKernel(name, WASM);
    registerKernel(config);
    restored.push(name);
  }
  originals.clear();
  return restored;
}
