/**
 * Chat templates (workers/chat/) against transformers 5.18's apply_chat_template: the renderings
 * of reference.json (tokenizer.chat) and of test/fixtures/chat/transformers.json (make.py there:
 * a system message, several turns, with and without the generation prompt, whitespace and
 * non-ASCII text), byte for byte, and their token ids; the folder's template from
 * chat_template.jinja over tokenizer_config.json's, kept by the export; error sentences.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChatTemplateError, renderChat, type ChatMessage } from '../../workers/chat/render';
import { chatSpecialTokens, renderFolderChat } from '../../workers/chat/template';
import { compareRenderings, renderForStudentAndTeacher } from '../../workers/chat/compare';
import { readModelFolder, trainedFolderFiles } from '../../workers/models/folder';
import { tokenizerFromJson } from '../../workers/models/tokenizer';
import { dirSource } from '../../workers/node/fs-source';

const HF = join(__dirname, '../fixtures/hf');
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const reference = json(join(HF, 'reference.json'));
const ours = json(join(__dirname, '../fixtures/chat/transformers.json'));

function folderFiles(folder: string) {
  const config = json(join(HF, folder, 'tokenizer_config.json'));
  return { config, tokenizer: tokenizerFromJson(json(join(HF, folder, 'tokenizer.json')), config, folder) };
}

describe('renderChat equals transformers', () => {
  it("reference.json's chat renderings (chatml: llama-tied, llama3: qwen3) and their ids", () => {
    for (const [name, folder] of [['chatml', 'llama-tied'], ['llama3', 'qwen3']] as const) {
      const { config, tokenizer } = folderFiles(folder);
      const text = renderChat(config.chat_template, reference.tokenizer.chat_messages, { addGenerationPrompt: true, specialTokens: chatSpecialTokens(config), model: folder });
      expect(text).toBe(reference.tokenizer.chat[name].rendered);
      expect(tokenizer.encode(text, { addSpecialTokens: false })).toEqual(reference.tokenizer.chat[name].ids);
      // Every model's prompts.chat was rendered with its own template.
      expect(text).toBe(reference.models[folder].prompts.chat.rendered);
    }
  });

  it(`transformers.json: ${ours.renderings.length} renderings (4 conversations × 2 templates × generation prompt or not), strings and ids`, () => {
    expect(ours.renderings.length).toBe(16);
    for (const r of ours.renderings) {
      const { config, tokenizer } = folderFiles(r.folder);
      const messages: ChatMessage[] = ours.conversations[r.conversation];
      const text = renderChat(config.chat_template, messages, { addGenerationPrompt: r.add_generation_prompt, specialTokens: chatSpecialTokens(config), model: r.folder });
      expect(text, `${r.template} ${r.conversation} ${r.add_generation_prompt}`).toBe(r.rendered);
      expect(tokenizer.encode(text, { addSpecialTokens: false })).toEqual(r.ids);
    }
  });

  it('what a template sees besides the messages (tools and documents None, unk undefined, the special tokens, namespace, loop, tojson), as transformers renders it', () => {
    const { config } = folderFiles('llama-tied');
    expect(ours.probes.length).toBe(6);
    for (const p of ours.probes) {
      const text = renderChat(p.template, ours.conversations[p.conversation], { addGenerationPrompt: p.add_generation_prompt, specialTokens: chatSpecialTokens(config) });
      expect(text, `${p.name} ${p.conversation}`).toBe(p.rendered);
    }
    // The one difference found: a boolean printed as text is Python's True/False in transformers,
    // true/false in @huggingface/jinja (workers/chat/README.md). Tests above use {% if %} instead.
    expect(renderChat('{{ add_generation_prompt }}', [{ role: 'user', content: 'x' }])).toBe('true');
  });

  it('special tokens as transformers passes them: strings, AddedToken objects by content, None left out', () => {
    expect(chatSpecialTokens({ bos_token: '<s>', eos_token: { content: '</s>', lstrip: false }, unk_token: null, additional_special_tokens: ['<a>', { content: '<b>' }], chat_template: 'x' })).toEqual({
      bos_token: '<s>',
      eos_token: '</s>',
      additional_special_tokens: ['<a>', '<b>'],
    });
    const t = '{{ bos_token }}|{% if unk_token is defined %}U{% else %}-{% endif %}|{{ additional_special_tokens | join(",") }}|{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}>{% endif %}';
    expect(renderChat(t, [{ role: 'user', content: 'hi' }], { specialTokens: { bos_token: '<s>', additional_special_tokens: ['<a>', '<b>'] } })).toBe('<s>|-|<a>,<b>|hi>');
    expect(renderChat(t, [{ role: 'user', content: 'hi' }], { addGenerationPrompt: false, specialTokens: { bos_token: '<s>', additional_special_tokens: [] } })).toBe('<s>|-||hi');
  });
});

describe('a folder’s chat template', () => {
  it('chat_template.jinja wins over tokenizer_config.json (as in transformers 5), and the export keeps it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opd-chat-'));
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) copyFileSync(join(HF, 'llama-tied', f), join(dir, f));
    writeFileSync(join(dir, 'chat_template.jinja'), ours.jinja_file.template);
    const folder = await readModelFolder(await dirSource(dir));
    expect(folder.chatTemplate).toBe(ours.jinja_file.template);
    expect(folder.tokenizer.chatTemplate).toBe(ours.jinja_file.template); // what the student/teacher tokenizer check compares
    expect(renderFolderChat(folder, ours.conversations[ours.jinja_file.conversation])).toBe(ours.jinja_file.rendered);
    const files = trainedFolderFiles(folder, folder.weights!);
    expect(new TextDecoder().decode(files.get('chat_template.jinja'))).toBe(ours.jinja_file.template);

    const plain = await readModelFolder(await dirSource(join(HF, 'qwen3')));
    expect(plain.chatTemplate).toBe(json(join(HF, 'qwen3', 'tokenizer_config.json')).chat_template);
    expect(trainedFolderFiles(plain, plain.weights!).has('chat_template.jinja')).toBe(false);
  });

  it('a list of named templates gives the "default" one', () => {
    const { tokenizer } = folderFiles('llama-tied');
    const config = { eos_token: '<|im_end|>', chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D' }] };
    const tok = tokenizerFromJson(json(join(HF, 'llama-tied', 'tokenizer.json')), config, 'x');
    expect(tok.chatTemplate).toBe('D');
    expect(tokenizer.chatTemplate).toContain('<|im_start|>');
  });

  it('compareRenderings and renderForStudentAndTeacher: the first difference of llama3 against chatml; two chatml folders render the same', () => {
    const same = compareRenderings('<|im_start|>user\nhi', '<|im_start|>user\nhi');
    expect(same).toEqual({ same: true, firstDifference: null });
    const chatml = ours.renderings.find((r: { template: string }) => r.template === 'chatml').rendered;
    const llama3 = ours.renderings.find((r: { template: string }) => r.template === 'llama3').rendered;
    const d = compareRenderings(llama3, chatml);
    expect(d.same).toBe(false);
    expect(d.firstDifference).toBe(2); // '<|endoftext|>…' against '<|im_start|>…'
    expect(compareRenderings('abcX', 'abcY').firstDifference).toBe(3);
    expect(compareRenderings('abc', 'abcd').firstDifference).toBe(3);

    const folder = (name: string) => {
      const bytes = new Uint8Array(readFileSync(join(HF, name, 'tokenizer_config.json')));
      return { label: name, chatTemplate: json(join(HF, name, 'tokenizer_config.json')).chat_template as string, tokenizerFiles: new Map([['tokenizer_config.json', bytes]]) };
    };
    const pair = renderForStudentAndTeacher(folder('qwen3'), folder('llama-teacher'), reference.tokenizer.chat_messages);
    expect(pair).toEqual({ student: reference.tokenizer.chat.llama3.rendered, teacher: reference.tokenizer.chat.chatml.rendered, same: false, firstDifference: 2 });
    expect(renderForStudentAndTeacher(folder('llama-tied'), folder('llama-teacher'), reference.tokenizer.chat_messages).same).toBe(true);
  });
});

describe('chat template errors, one sentence naming the model and Jinja’s error', () => {
  it('a template that does not parse', () => {
    const e = (() => {
      try {
        renderChat('{% for m in messages %}{{ m.content }}', [{ role: 'user', content: 'x' }], { model: 'models/broken' });
      } catch (e) {
        return e;
      }
    })();
    expect(e).toBeInstanceOf(ChatTemplateError);
    expect((e as Error).message).toMatch(/^The chat template of models\/broken is not valid Jinja \(.+\): fix the template, or use plain prompts\.$/);
  });

  it("a template's raise_exception, with its text", () => {
    const t = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation roles must start with user') }}{% endif %}{{ messages[0].content }}";
    expect(() => renderChat(t, [{ role: 'system', content: 'x' }], { model: 'qwen3' })).toThrow(
      /^The chat template of qwen3 failed to render the messages \(.*Conversation roles must start with user.*\)\.$/,
    );
    expect(renderChat(t, [{ role: 'user', content: 'x' }])).toBe('x');
  });

  it('no messages, a message without content, a folder without a template', () => {
    expect(() => renderChat('x', [], { model: 'm' })).toThrow(/^There are no messages to render with the chat template of m/);
    expect(() => renderChat('x', [{ role: 'user' } as unknown as ChatMessage], { model: 'm' })).toThrow(/^Message 1 for the chat template of m is not a \{ role, content \} object/);
    expect(() => renderFolderChat({ label: 'gpt2-folder', chatTemplate: null, tokenizerFiles: new Map() }, [{ role: 'user', content: 'x' }])).toThrow(
      /^gpt2-folder has no chat template \(neither chat_template\.jinja nor a chat_template in tokenizer_config\.json\)/,
    );
  });
});
