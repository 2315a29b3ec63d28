/** Hub ids: what is one, the sentence for what is not, and the file URLs built from them. */
import { describe, expect, it } from 'vitest';
import { hubFileUrl, hubIdLabel, hubIdProblem, looksLikeHubId, normalizeEndpoint, parseHubId } from '../../workers/models/hub/id';

describe('Hub model ids', () => {
  it('parses ORG/NAME with main as the default revision, and ORG/NAME@REVISION', () => {
    expect(parseHubId('HuggingFaceTB/SmolLM2-135M-Instruct')).toEqual({ repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', revision: 'main' });
    expect(parseHubId('Qwen/Qwen3-0.6B@v1.0')).toEqual({ repo: 'Qwen/Qwen3-0.6B', revision: 'v1.0' });
    expect(parseHubId('org/name@refs/pr/1')).toEqual({ repo: 'org/name', revision: 'refs/pr/1' });
    expect(hubIdLabel(parseHubId('org/name@main'))).toBe('org/name');
    expect(hubIdLabel(parseHubId('org/name@dev'))).toBe('org/name@dev');
  });

  it('refuses what is not an id with a sentence saying what one looks like', () => {
    for (const bad of ['gpt2', 'a/b/c', 'org/', '/name', 'org/na me', 'org/-name', 'org/name.', 'org/na--me', 'org/name@', 'org/name@a b', 'org/name@../x']) {
      const problem = hubIdProblem(bad);
      expect(problem, bad).toMatch(/ORG\/NAME or ORG\/NAME@REVISION/);
      expect(problem).toContain(`'${bad}'`);
      expect(() => parseHubId(bad)).toThrow(problem!);
    }
  });

  it('builds {endpoint}/ORG/NAME/resolve/{revision}/{file}, the revision quoted whole', () => {
    const id = parseHubId('org/name@refs/pr/1');
    expect(hubFileUrl('https://huggingface.co', id, 'onnx/model.onnx')).toBe('https://huggingface.co/org/name/resolve/refs%2Fpr%2F1/onnx/model.onnx');
    expect(hubFileUrl('http://127.0.0.1:9/mirror/', parseHubId('org/name'), 'config.json')).toBe('http://127.0.0.1:9/mirror/org/name/resolve/main/config.json');
    expect(normalizeEndpoint(undefined)).toBe('https://huggingface.co');
    expect(normalizeEndpoint('')).toBe('https://huggingface.co');
    expect(() => normalizeEndpoint('ftp://x')).toThrow(/http:\/\/ or https:\/\//);
    expect(() => normalizeEndpoint('not a url')).toThrow(/is not a URL/);
  });

  it('tells a command-line id from a path', () => {
    for (const id of ['org/name', 'org/name@main', 'Qwen/Qwen3-0.6B']) expect(looksLikeHubId(id), id).toBe(true);
    for (const path of ['./org/name', '/abs/path', '~/models/x', 'models', 'a/b/c', 'models/']) expect(looksLikeHubId(path), path).toBe(false);
  });
});
