/**
 * Pixel tensors on the wire: `{ dtype, shape, data }` where `data` is standard, padded base64
 * (RFC 4648 section 4) of the row-major values, little-endian. Decoding checks the base64 length
 * against the shape before it allocates anything, and returns a typed array, never number[].
 */
import { z } from 'zod';

/** Element types a tensor may have on the wire. */
export const PIXEL_DTYPES = ['uint8', 'uint16', 'float32'] as const;

/** Element type of a pixel tensor. */
export type PixelDtype = (typeof PIXEL_DTYPES)[number];

/** Pixel values in memory: the typed array of the tensor's dtype. */
export type PixelData = Uint8Array | Uint16Array | Float32Array;

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<PixelDtype, number>> = Object.freeze({
  uint8: 1,
  uint16: 2,
  float32: 4,
});

export const pixelDtypeSchema = z.enum(PIXEL_DTYPES);

/** A tensor dimension: a positive integer. */
export const dimensionSchema = z.int().positive();

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The dtype of a typed array, or undefined for any other array type. */
export function dtypeOf(data: PixelData): PixelDtype | undefined {
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Float32Array) return 'float32';
  return undefined;
}

/** Number of elements of a shape (the product of its dimensions). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Length of the padded base64 text of `bytes` bytes. */
export function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

function swapBytes(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/** How float32 values are checked when decoding. */
export type FloatRange = 'finite' | 'unit';

/** The outcome of {@link decodeTensorData}: the values, or why they are refused. */
export type DecodedTensorData = { ok: true; data: PixelData } | { ok: false; error: string };

/**
 * Decodes the base64 `data` of a tensor of `dtype` and `shape`.
 *
 * Checks, in order, before allocating: the base64 length is exactly that of
 * product(shape) * bytes(dtype) bytes; then the alphabet and padding. After decoding, float32
 * values must be finite, and in [0, 1] when `floatRange` is 'unit'.
 *
 * @param field - name of the tensor in error messages, e.g. `patches`.
 */
export function decodeTensorData(
  field: string,
  dtype: PixelDtype,
  shape: readonly number[],
  data: string,
  floatRange: FloatRange = 'finite',
): DecodedTensorData {
  const elements = elementCount(shape);
  const width = DTYPE_BYTES[dtype];
  const bytes = elements * width;
  const expectedLength = base64Length(bytes);
  const needs = `${shape.join('x')} ${dtype} needs ${bytes} bytes`;
  if (data.length !== expectedLength) {
    return {
      ok: false,
      error: `${field}.data: ${data.length} base64 characters, expected ${expectedLength} (${needs})`,
    };
  }
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  const decodedBytes = (expectedLength / 4) * 3 - padding;
  if (decodedBytes !== bytes) {
    return { ok: false, error: `${field}.data: decodes to ${decodedBytes} bytes (${needs})` };
  }
  const buffer = new ArrayBuffer(bytes);
  const raw = new Uint8Array(buffer);
  const view = Buffer.from(buffer);
  const written = view.write(data, 'base64');
  // Node's decoder skips what is not base64 and takes the URL-safe alphabet too; only standard
  // base64 encodes back to itself. (Natively: a regular expression over the text cost more than
  // all the rest of a candidate's parsing.)
  if (written !== bytes || view.toString('base64') !== data) {
    return { ok: false, error: `${field}.data: not standard padded base64 (RFC 4648 section 4)` };
  }
  if (!LITTLE_ENDIAN) swapBytes(raw, width);
  if (dtype === 'uint8') return { ok: true, data: raw };
  if (dtype === 'uint16') return { ok: true, data: new Uint16Array(buffer) };
  const floats = new Float32Array(buffer);
  const unit = floatRange === 'unit';
  for (let i = 0; i < floats.length; i++) {
    const v = floats[i]!;
    if (unit ? !(v >= 0 && v <= 1) : !Number.isFinite(v)) {
      return {
        ok: false,
        error: `${field}.data: value ${i} is ${v}; float32 values must be ${unit ? 'in [0, 1]' : 'finite'}`,
      };
    }
  }
  return { ok: true, data: floats };
}

/** Standard padded base64 of a typed array's values, little-endian. */
export function encodeTensorData(data: PixelData): string {
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1) return view.toString('base64');
  const copy = Buffer.from(view);
  swapBytes(copy, data.BYTES_PER_ELEMENT);
  return copy.toString('base64');
}
