/**
 * The Llama family's parameters: Hugging Face names, shapes, each tensor's role and the linear
 * weights LoRA may adapt (q, k, v, o, gate, up, down). The projections are kept [in, out] in the
 * lab (y = x·W, the layout of every kernel and of LoRA, as GPT-2's Conv1D has it); model.safetensors
 * stores them [out, in], torch.nn.Linear's layout, so they are marked `transposedInFile`. The
 * embedding and an untied lm_head are [vocab, hidden] in both (the head is applied as x·Wᵀ).
 */
import type { ParamSpec } from '../family';
import type { LlamaConfig } from './config';

/** The LoRA targets by their short names, as PEFT's target_modules name them. */
export const LLAMA_LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

export function llamaParamSpecs(c: LlamaConfig): ParamSpec[] {
  const { hidden: H, headDim: D, nHead, nKvHead, intermediate: I, vocabSize: V } = c;
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, H], role: 'embedding' }];
  const linear = (name: string, out: number, inDim: number, bias: boolean) => {
    specs.push({ name: `${name}.weight`, shape: [inDim, out], role: 'linear-weight', loraTarget: true, transposedInFile: true });
    if (bias) specs.push({ name: `${name}.bias`, shape: [out], role: 'linear-bias' });
  };
  for (let l = 0; l < c.nLayer; l++) {
    const pre = `model.layers.${l}`;
    specs.push({ name: `${pre}.input_layernorm.weight`, shape: [H], role: 'norm-weight' });
    linear(`${pre}.self_attn.q_proj`, nHead * D, H, c.qkvBias);
    linear(`${pre}.self_attn.k_proj`, nKvHead * D, H, c.qkvBias);
    linear(`${pre}.self_attn.v_proj`, nKvHead * D, H, c.qkvBias);
    linear(`${pre}.self_attn.o_proj`, H, nHead * D, c.outputBias);
    if (c.qkNorm) {
      specs.push({ name: `${pre}.self_attn.q_norm.weight`, shape: [D], role: 'norm-weight' });
      specs.push({ name: `${pre}.self_attn.k_norm.weight`, shape: [D], role: 'norm-weight' });
    }
    specs.push({ name: `${pre}.post_attention_layernorm.weight`, shape: [H], role: 'norm-weight' });
    linear(`${pre}.mlp.gate_proj`, I, H, c.mlpBias);
    linear(`${pre}.mlp.up_proj`, I, H, c.mlpBias);
    linear(`${pre}.mlp.down_proj`, H, I, c.mlpBias);
  }
  specs.push({ name: 'model.norm.weight', shape: [H], role: 'norm-weight' });
  if (!c.tiedEmbeddings) specs.push({ name: 'lm_head.weight', shape: [V, H], role: 'linear-weight' });
  return specs;
}

export function countLlamaParameters(c: LlamaConfig): number {
  return llamaParamSpecs(c).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
}
