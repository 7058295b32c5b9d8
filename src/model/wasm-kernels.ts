/**
 * Training kernels that the tfjs 4.22 wasm backend lacks.
 *
 * The wasm backend ships every kernel a CNN needs for inference, and most of
 * what it needs for training, but not `Conv2DBackpropFilter` (the gradient of
 * conv2d with respect to its filter), so `model.fit` of any model with a
 * conv2d layer fails with "Kernel 'Conv2DBackpropFilter' not registered for
 * backend 'wasm'". This module registers it, built out of wasm's own kernels
 * (so it runs in XNNPACK, never in JavaScript loops and never through the
 * engine: no tensors are created, only backend data that is freed before the
 * kernel returns).
 *
 * The filter gradient is itself a convolution:
 *   dW[fh,fw,ci,co] = sum_{b,oh,ow} xpad[b, oh*sh + fh, ow*sw + fw, ci] * dy[b,oh,ow,co]
 * With x transposed to [CI, H, W, B] as the input ("batch" CI, "channels" B)
 * and dy transposed to [OH, OW, B, CO] as the filter, a stride-1 convolution
 * dilated by the forward stride, padded top/left like the forward pass and
 * bottom/right so that the output is exactly [CI, FH, FW, CO], computes dW up
 * to a final transpose to [FH, FW, CI, CO]. When that bottom/right padding
 * would be negative (rows/columns of x that the forward pass never reads), x
 * is sliced instead.
 *
 * Found missing while training small CNNs with tfjs-layers on wasm (everything
 * else that conv/dense/pooling/batch-norm/dropout/softmax/crossentropy and the
 * SGD/momentum/Adam/RMSProp optimizers need is present in wasm 4.22):
 *  - Conv2DBackpropFilter (conv2d): one XNNPACK convolution, as above.
 *  - DepthwiseConv2dNativeBackpropFilter / DepthwiseConv2dNativeBackpropInput
 *    (depthwiseConv2d, separableConv2d): direct loops over the wasm heap, the
 *    same arithmetic as the cpu backend; cheap next to the pointwise convs.
 *  - UnsortedSegmentSum (the gradient of gather, e.g. embeddings): a loop.
 */
import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  getKernel,
  registerKernel,
  Slice,
  Transpose,
  UnsortedSegmentSum,
  util,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type DataType,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type KernelFunc,
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

const KERNELS: readonly { kernelName: string; kernelFunc: KernelFunc }[] = [
  { kernelName: Conv2DBackpropFilter, kernelFunc: conv2DBackpropFilterWasm },
  { kernelName: DepthwiseConv2dNativeBackpropFilter, kernelFunc: depthwiseConv2dNativeBackpropFilterWasm },
  { kernelName: DepthwiseConv2dNativeBackpropInput, kernelFunc: depthwiseConv2dNativeBackpropInputWasm },
  { kernelName: UnsortedSegmentSum, kernelFunc: unsortedSegmentSumWasm },
];

/** The kernels this module provides for the wasm backend (registered only where missing). */
export const WASM_TRAINING_KERNELS: readonly string[] = KERNELS.map((k) => k.kernelName);

/**
 * Registers the training kernels missing from the wasm backend. Idempotent:
 * a kernel already registered for 'wasm' (by an earlier call, other code, or
 * a later tfjs that ships it) is left alone. Returns the names of the kernels
 * this call registered. Works before or after the wasm backend initializes.
 */
export function registerWasmTrainingKernels(): string[] {
  const added: string[] = [];
  for (const k of KERNELS) {
    if (getKernel(k.kernelName, WASM) !== undefined) continue;
    registerKernel({ kernelName: k.kernelName, backendName: WASM, kernelFunc: k.kernelFunc });
    added.push(k.kernelName);
  }
  return added;
}
