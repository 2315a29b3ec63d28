/**
 * The model-family seam: everything the lab needs to know about one architecture (GPT-2; the
 * Llama family: Llama, Qwen2, Qwen3), behind one interface. A family lives in its own folder
 * (workers/models/<family>/) and is registered by its config.json `model_type` in registry.ts;
 * the trainer, LoRA, the optimizer, checkpoints, the sampler, the scorer and the run loop are
 * family-agnostic and take the family from the registry.
 *
 * A family provides:
 *   - its config.json, parsed and validated (`configFromJson`) and written back (`configToJson`);
 *   - its parameters: Hugging Face names, shapes, each tensor's role, and which linear weights
 *     LoRA may adapt (`paramSpecs`), read from and written to model.safetensors;
 *   - the forward and backward graph on the lab's WGSL kernels (`createTrainingGraph`);
 *   - its ONNX decoder in the transformers.js input/output layout (`buildDecoder`), the shape of
 *     its KV cache (`decoderShape`), and its weights as feeds of that decoder, read in place from
 *     the trainer's GPU buffers (`weightFeeds`).
 */
import type { ParamRole } from '../kernels/train/optimizer';
import type { DecoderShape } from '../ort/decoder-io';
import type { ort } from '../ort/runtime';
import type { ModelArchitecture } from '../contract/models';

export type { ParamRole, DecoderShape, ModelArchitecture };

/** One parameter tensor of a model. */
export interface ParamSpec {
  /** Hugging Face name, e.g. `transformer.h.0.attn.c_attn.weight`. */
  name: string;
  shape: number[];
  /** What the tensor is: its initialisation and weight decay follow from it. */
  role: ParamRole;
  /** A linear weight [in, out] that LoRA may adapt (W_eff = W + s·A·B). */
  loraTarget?: boolean;
  /**
   * The lab keeps this linear weight [in, out] (y = x·W, as every kernel and LoRA expect) while
   * model.safetensors stores it [out, in], torch.nn.Linear's layout: the family's safetensors
   * reader and writer transpose it.
   */
  transposedInFile?: boolean;
}

/** Parameters by HF name, float32, row-major in the spec's shape. */
export type ModelParams = ReadonlyMap<string, Float32Array>;

/** What every family's config has, as the family-agnostic code reads it. */
export interface FamilyConfig {
  /** config.json's `model_type`: the family's key in the registry. */
  modelType: string;
  vocabSize: number;
  /** Longest sequence the model takes (prompt + completion). */
  nPositions: number;
  bosTokenId?: number;
  eosTokenId?: number;
}

/** The ONNX decoder's weights: in the file (export), or graph inputs fed from GPU buffers. */
export type DecoderWeights = { kind: 'initializers'; params: ModelParams } | { kind: 'inputs' };

/** What the training graph reads and writes through the family-agnostic weight store. */
export interface GraphWeights {
  /** The buffer the model computes with: W_eff for LoRA-adapted weights, else the parameter. */
  weight(name: string): GPUBuffer;
  /**
   * Where the gradient of `name` goes this micro-batch and whether to add to it; undefined when
   * the tensor is frozen. For a LoRA-adapted weight it is the scratch dW_eff (overwritten).
   */
  gradient(name: string, first: boolean): { buffer: GPUBuffer; accumulate: boolean } | undefined;
  /** Called after a linear weight's gradient was written: LoRA turns dW_eff into dA and dB. */
  afterWeightGradient(encoder: GPUCommandEncoder, name: string, first: boolean): void;
}

/** One packed micro-batch on the GPU (workers/train/batch.ts describes the layout). */
export interface GraphBatch {
  batch: number;
  width: number;
  rows: number;
  /** u32 [rows] each: token ids, positions, 1 for a real token and 0 for padding. */
  tokens: GPUBuffer;
  positions: GPUBuffer;
  keyMask: GPUBuffer;
  /** The same token ids and positions on the CPU (the embedding backward groups rows by them). */
  tokenIds: Uint32Array;
  positionIds: Uint32Array;
  /** f32 [rows, vocab]: written by forward. */
  logits: GPUBuffer;
  /** f32 [rows, vocab]: the loss gradient w.r.t. the logits, read by backward. */
  dlogits: GPUBuffer;
}

/** A family's forward and backward on the lab's kernels, for one trainer's weights. */
export interface TrainingGraph {
  /** Records the forward of `batch` into `encoder`: logits, and the activations backward needs. */
  forward(encoder: GPUCommandEncoder, batch: GraphBatch): void;
  /**
   * Records the backward from batch.dlogits on the activations of the last forward of the same
   * batch; the first micro-batch of a step overwrites the gradients, later ones add to them.
   * Returns what to free once the encoder's work is done, if anything.
   */
  backward(encoder: GPUCommandEncoder, batch: GraphBatch, first: boolean): (() => void) | undefined;
  destroy(): void;
}

export interface ModelFamily<C extends FamilyConfig = FamilyConfig> {
  /** config.json's `model_type`. */
  readonly modelType: string;
  /** For people: "GPT-2", "Llama", "Qwen2". */
  readonly name: string;
  /** Validates a parsed config.json; errors name the file and the field. */
  configFromJson(raw: unknown, file?: string): C;
  /** The config's depth in config.json's own words, for error sentences: "n_layer 2". */
  describeSize(config: C): string;
  /** The config.json the lab writes: loadable by transformers and transformers.js. */
  configToJson(config: C): Record<string, unknown>;
  /** The architecture for people (the Models panel): layers, widths, heads, positions, head. */
  architecture(config: C): ModelArchitecture;
  /** Every trainable tensor, in one fixed order (the decoder's weight inputs, model.safetensors). */
  paramSpecs(config: C): ParamSpec[];
  /** Parameters counted for FLOPs and for people (a tied head counted once). */
  countParameters(config: C): number;
  /** model.safetensors → parameters checked against the config; errors name the file and tensor. */
  readSafetensors(config: C, bytes: Uint8Array, file?: string): Map<string, Float32Array>;
  writeSafetensors(config: C, params: ModelParams, metadata?: Record<string, string>): Uint8Array;
  /** The KV cache's shape per layer. */
  decoderShape(config: C): DecoderShape;
  /** The largest intermediates of one layer for a batch, by name (the memory check). */
  activationTensors(config: C, batch: number, sequence: number): { name: string; bytes: number }[];
  /**
   * Every activation the training graph keeps for one forward and backward of `batch` sequences,
   * all layers together, by name (the training memory check); without it the check counts
   * activationTensors × layers.
   */
  trainingActivations?(config: C, batch: number, sequence: number): { name: string; bytes: number }[];
  /** The decoder as ONNX bytes, in the transformers.js layout. */
  buildDecoder(config: C, weights: DecoderWeights): Uint8Array;
  /** The weights as feeds of a decoder built with `{ kind: 'inputs' }`, read in place from GPU buffers. */
  weightFeeds(config: C, buffers: ReadonlyMap<string, GPUBuffer>): Record<string, ort.Tensor>;
  /** Once per device before training: picks the kernel variants the graph runs (timed on the adapter). */
  prepareTraining(device: GPUDevice): Promise<void>;
  createTrainingGraph(device: GPUDevice, config: C, weights: GraphWeights): TrainingGraph;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
