/**
 * What sampling needs of a model the lab knows only from its ONNX graph (config.json's model_type
 * is none of the registry's families): the KV cache's layout comes from the graph itself
 * (decoder-session.ts, createGraphDecoderSession); the rest from the folder, as transformers reads
 * it:
 *   - the context: config.json's max_position_embeddings, else n_positions, else n_ctx (GPT-2
 *     style); none of them is a sentence, since the sampler must not run past what the model takes;
 *   - the vocabulary: the graph's logits when their last dimension is fixed, else config.json's
 *     vocab_size;
 *   - the end of a completion: the tokenizer's EOS token, else generation_config.json's
 *     eos_token_id, else config.json's (a list: its first entry; none: only max tokens ends one).
 */
import type { FamilyConfig } from './family';
import type { ModelFolder } from './folder';
import { ModelFolderError } from './source';

/** The sampler's view of a graph of no known family (a family's config has the same fields). */
export type GraphSamplingConfig = Pick<FamilyConfig, 'vocabSize' | 'nPositions' | 'eosTokenId'>;

const CONTEXT_FIELDS = ['max_position_embeddings', 'n_positions', 'n_ctx'] as const;

const positiveInteger = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);
const tokenId = (v: unknown): number | undefined =>
  Array.isArray(v) ? tokenId(v[0]) : typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;

/** The model's name in sentences: "<folder> (a 'mystery' model the lab knows only from its graph)". */
function describe(folder: Pick<ModelFolder, 'label' | 'rawConfig'>): string {
  const type = folder.rawConfig.model_type;
  return `${folder.label} (${typeof type === 'string' ? `a '${type.slice(0, 60)}'` : 'a'} model the lab knows only from its graph)`;
}

/**
 * The context and EOS of a graph-only model, from its folder; a sentence when config.json gives
 * no context. Checked before any session is opened.
 */
export function graphContextOf(folder: Pick<ModelFolder, 'label' | 'rawConfig' | 'generationConfig' | 'tokenizer'>): Pick<GraphSamplingConfig, 'nPositions' | 'eosTokenId'> {
  const field = CONTEXT_FIELDS.find((f) => positiveInteger(folder.rawConfig[f]) !== undefined);
  if (!field) {
    throw new ModelFolderError(
      `${describe(folder)} has no context length in config.json (${CONTEXT_FIELDS.join(', ')}): sampling needs to know how many tokens the model takes; add max_position_embeddings to config.json.`,
      folder.label,
      'config.json',
    );
  }
  const eos = folder.tokenizer.eosTokenId ?? tokenId(folder.generationConfig?.eos_token_id) ?? tokenId(folder.rawConfig.eos_token_id);
  return { nPositions: folder.rawConfig[field] as number, ...(eos !== undefined ? { eosTokenId: eos } : {}) };
}

/** graphContextOf's, with the vocabulary of the graph's logits (`graphVocabSize`) or config.json's vocab_size; a sentence when neither says it. */
export function graphSamplingConfig(
  folder: Pick<ModelFolder, 'label' | 'rawConfig' | 'generationConfig' | 'tokenizer'>,
  graphVocabSize: number | undefined,
): GraphSamplingConfig {
  const context = graphContextOf(folder);
  const vocabSize = graphVocabSize ?? positiveInteger(folder.rawConfig.vocab_size);
  if (vocabSize === undefined) {
    throw new ModelFolderError(
      `${describe(folder)} declares its logits with no fixed vocabulary size, and config.json has no vocab_size: add vocab_size to config.json.`,
      folder.label,
      'config.json',
    );
  }
  return { vocabSize, ...context };
}
