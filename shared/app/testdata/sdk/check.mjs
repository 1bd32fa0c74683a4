// Drives a Keyway gateway with the official OpenAI and Anthropic SDKs and
// prints what they parsed, as JSON (shared/app TestOfficialSDKsParseMeteredResponses).
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const [base, key] = process.argv.slice(2);
const openai = new OpenAI({ baseURL: base + '/openai/v1', apiKey: key, maxRetries: 0 });
const stream = await openai.chat.completions.create({
  model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }],
});
let text = '', chunks = 0, sawUsage = false;
for await (const c of stream) {
  chunks++;
  if (c.usage) sawUsage = true;
  text += c.choices[0]?.delta?.content ?? '';
}
const json = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
const anthropic = new Anthropic({ baseURL: base + '/anthropic', apiKey: key, maxRetries: 0 });
const msg = await anthropic.messages.create({
  model: 'claude-sonnet-4', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }],
});
console.log(JSON.stringify({ text, chunks, sawUsage, jsonUsage: json.usage, anthropicUsage: msg.usage }));
