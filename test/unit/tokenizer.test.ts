import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSameTokenizer, compareTokenizers, loadTokenizer, TokenizerMismatchError } from '../../workers/models/tokenizer';
import { filesSource, ModelFolderError } from '../../workers/models/source';
import { pickedFolderEntries } from '../../workers/contract/files';
import { dirSource } from '../../workers/node/fs-source';
import { ARITHMETIC_CHARS as DIGITS, charTokenizer } from './fixtures';

function folder(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'opd-tok-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}


describe('tokenizers of model folders', () => {
  it('loads tokenizer.json + tokenizer_config.json from disk and round-trips text', async () => {
    const dir = folder({ 'tokenizer.json': charTokenizer(DIGITS), 'tokenizer_config.json': { eos_token: '<|endoftext|>', chat_template: null } });
    const tok = await loadTokenizer(await dirSource(dir));
    const ids = tok.encode('Q: 12+34= A: 46', { addSpecialTokens: false });
    expect(ids.length).toBe('Q: 12+34= A: 46'.length);
    expect(ids[0]).toBe(DIGITS.indexOf('Q') + 1);
    expect(tok.decode(ids)).toBe('Q: 12+34= A: 46');
    expect(tok.vocab.length).toBe(DIGITS.length + 1);
    expect(tok.eosTokenId).toBe(0);
    expect(tok.specialTokens.eos).toBe('<|endoftext|>');
    expect(tok.tokenText(DIGITS.indexOf('7') + 1)).toBe('7');
  });

  it('reads a folder picked in the browser (paths relative to the picked folder)', async () => {
    const blob = (o: unknown) => new Blob([JSON.stringify(o)]);
    const picked = [
      Object.assign(new File([blob(charTokenizer(DIGITS))], 'tokenizer.json'), { webkitRelativePath: 'my-model/tokenizer.json' }),
    ];
    const source = filesSource(pickedFolderEntries(picked), "picked folder 'my-model'");
    expect(await source.has('tokenizer.json')).toBe(true);
    const tok = await loadTokenizer(source);
    expect(tok.vocab.length).toBe(DIGITS.length + 1);
    await expect(source.read('onnx/model.onnx')).rejects.toThrow("onnx/model.onnx is missing from picked folder 'my-model'");
  });

  it('names the folder and the file when something is missing or broken', async () => {
    await expect(dirSource('/nonexistent/opd-model')).rejects.toThrow('does not exist');
    const empty = folder({ 'config.json': {} });
    await expect(loadTokenizer(await dirSource(empty))).rejects.toThrow(/has no tokenizer\.json/);
    const broken = folder({ 'tokenizer.json': '{"model": {"type": "WordLevel"' });
    const err = await loadTokenizer(await dirSource(broken)).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFolderError);
    expect(err.message).toContain('tokenizer.json');
    expect(err.message).toContain('not valid JSON');
    const notTok = folder({ 'tokenizer.json': { hello: 1 } });
    await expect(loadTokenizer(await dirSource(notTok))).rejects.toThrow('no "model" section');
  });
});

describe('student/teacher tokenizer compatibility', () => {
  const load = async (t: unknown, cfg: Record<string, unknown> = {}) =>
    loadTokenizer(await dirSource(folder({ 'tokenizer.json': t, 'tokenizer_config.json': cfg })));

  it('accepts identical tokenizers with no warnings', async () => {
    const a = await load(charTokenizer(DIGITS), { eos_token: '<|endoftext|>' });
    const b = await load(charTokenizer(DIGITS), { eos_token: '<|endoftext|>' });
    expect(compareTokenizers(a, b)).toEqual({ errors: [], warnings: [] });
    expect(assertSameTokenizer(a, b)).toEqual([]);
  });

  it('refuses different vocabulary sizes, naming the first tokens that differ', async () => {
    const a = await load(charTokenizer(DIGITS));
    const b = await load(charTokenizer(['x', ...DIGITS]));
    const c = compareTokenizers(a, b);
    expect(c.errors).toHaveLength(1);
    expect(c.errors[0]).toContain(`has ${DIGITS.length + 1} tokens and the teacher's ${DIGITS.length + 2}`);
    expect(c.errors[0]).toContain('id 1: student "0", teacher "x"');
    expect(() => assertSameTokenizer(a, b)).toThrow(TokenizerMismatchError);
  });

  it('refuses same-size vocabularies with different token strings', async () => {
    const swapped = [...DIGITS];
    [swapped[3], swapped[4]] = [swapped[4], swapped[3]];
    const c = compareTokenizers(await load(charTokenizer(DIGITS)), await load(charTokenizer(swapped)));
    expect(c.errors[0]).toContain('id 4: student "3", teacher "4"');
    expect(c.errors[0]).toContain('id 5: student "4", teacher "3"');
  });

  it('warns, without refusing, on different special tokens and chat templates', async () => {
    const a = await load(charTokenizer(DIGITS), { eos_token: '<|endoftext|>', chat_template: '{{ messages }}' });
    const b = await load(charTokenizer(DIGITS), { eos_token: { content: 'Q' }, chat_template: '<s>{{ messages }}' });
    const c = compareTokenizers(a, b);
    expect(c.errors).toEqual([]);
    expect(c.warnings).toContain('The eos token differs: student "<|endoftext|>", teacher "Q".');
    expect(c.warnings.some((w) => w.startsWith('The chat templates differ'))).toBe(true);
    const onlyOne = compareTokenizers(a, await load(charTokenizer(DIGITS), { eos_token: '<|endoftext|>' }));
    expect(onlyOne.warnings).toEqual(['Only the student has a chat template: prompts will be formatted for one model only, which biases every token’s KL.']);
  });
});
