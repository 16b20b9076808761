/**
 * Try a model: draw on a canvas for 28×28 image models, a form generated from the signature for
 * tabular ones, a streaming chat for language models (GGUF).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, describeError, readEventStream, request } from '../api.ts';
import { ProbabilityBars } from '../charts.tsx';
import { formatNumber } from '../format.ts';
import { drawPreview, mnistPixels } from '../mnist-drawing.ts';
import { href, navigate } from '../router.ts';
import type { Model, TensorSpec, Version } from '../types.ts';
import { ErrorNotice, Loading, PageHeader, useApi } from '../ui.tsx';

interface InferResponse {
  outputs: { name: string; shape: number[]; datatype: string; data: number[] }[];
}

type Kind = 'image' | 'tabular' | 'chat' | 'unsupported';

/** The per-sample input shape (without the batch axis) of a one-input ONNX model. */
function sampleShape(input: TensorSpec | undefined): number[] | undefined {
  if (input === undefined) return undefined;
  return input.shape.slice(1);
}

function kindOf(version: Version): Kind {
  if (version.format === 'gguf') return 'chat';
  const inputs = version.signature.inputs ?? [];
  if (inputs.length !== 1) return 'unsupported';
  const shape = sampleShape(inputs[0])!;
  const size = shape.reduce((product, value) => product * value, 1);
  if (shape.every((value) => value > 0) && size === 784 && (shape.length >= 2 || shape[0] === 784)) return 'image';
  if (shape.length === 1 && shape[0]! > 0 && shape[0]! <= 256) return 'tabular';
  return 'unsupported';
}

/** Names a server attaches to a version (class and feature names from the training data), when it has them. */
function namesOf(version: Version, field: 'classNames' | 'featureNames'): string[] | undefined {
  const candidates = [(version as unknown as Record<string, unknown>)[field], version.signature[field]];
  for (const candidate of candidates) if (Array.isArray(candidate) && candidate.every((name) => typeof name === 'string')) return candidate as string[];
  return undefined;
}

function softmaxIfNeeded(values: number[]): number[] {
  const sum = values.reduce((total, value) => total + value, 0);
  const isDistribution = values.every((value) => value >= 0 && value <= 1) && Math.abs(sum - 1) < 1e-3;
  if (isDistribution || values.length === 1) return values;
  const max = Math.max(...values);
  const exponentials = values.map((value) => Math.exp(value - max));
  const total = exponentials.reduce((sum, value) => sum + value, 0);
  return exponentials.map((value) => value / total);
}

async function infer(model: string, version: number, input: TensorSpec, data: number[]): Promise<number[]> {
  const shape = [1, ...sampleShape(input)!];
  const response = await api<InferResponse>(`/v2/models/${encodeURIComponent(model)}/versions/${version}/infer`, {
    method: 'POST',
    body: { inputs: [{ name: input.name, shape, datatype: input.datatype === 'FP64' ? 'FP64' : 'FP32', data }] },
  });
  return response.outputs[0]?.data ?? [];
}

/**
 * An integrated-gradients heat map of `target` over the image (POST …/explain with format png):
 * red where ink raised the class's score, blue where it lowered it.
 */
async function explainAsImage(model: string, version: number, input: TensorSpec, data: number[], target: number): Promise<Blob> {
  const response = await request(`/v2/models/${encodeURIComponent(model)}/versions/${version}/explain`, {
    method: 'POST',
    accept: 'image/png',
    body: { inputs: [{ name: input.name, shape: [1, ...sampleShape(input)!], datatype: 'FP32', data }], target, format: 'png', steps: 64 },
  });
  return response.blob();
}

/** Whether the model takes raw 0–255 pixels: its spec scales its input itself (input.scale). */
async function takesRawPixels(model: string, version: number): Promise<boolean> {
  try {
    const spec = await api<{ input?: { scale?: number } }>(`/api/v1/models/${encodeURIComponent(model)}/versions/${version}/files/spec.json`);
    return typeof spec.input?.scale === 'number';
  } catch {
    // No spec (an uploaded .onnx) or no download permission: MNIST-style models expect [0, 1].
    return false;
  }
}

/** The most likely class in words, then every class's probability as a bar. */
function ClassifierAnswer({ labels, probabilities }: { labels: string[]; probabilities: number[] }) {
  const best = probabilities.indexOf(Math.max(...probabilities));
  return (
    <>
      <p class="prediction" id="prediction" data-class={labels[best]}>
        <span class="muted">Most likely</span> <strong>{labels[best]}</strong> <span class="muted">({((probabilities[best] ?? 0) * 100).toFixed(1)}%)</span>
      </p>
      <ProbabilityBars labels={labels} values={probabilities} />
    </>
  );
}

function DrawingPad({ model, version }: { model: string; version: Version }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const preview = useRef<HTMLCanvasElement>(null);
  const drawing = useRef(false);
  const last = useRef<{ x: number; y: number } | undefined>(undefined);
  const [probabilities, setProbabilities] = useState<number[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [raw, setRaw] = useState<boolean | undefined>(undefined);
  const [heatmap, setHeatmap] = useState<{ url: string; target: number } | undefined>(undefined);
  const [explaining, setExplaining] = useState(false);
  const [explainNote, setExplainNote] = useState<string | undefined>(undefined);
  const input = version.signature.inputs![0]!;
  // Object URLs hold their blob until revoked.
  useEffect(() => () => (heatmap === undefined ? undefined : URL.revokeObjectURL(heatmap.url)), [heatmap]);
  const classNames = namesOf(version, 'classNames');

  useEffect(() => {
    takesRawPixels(model, version.version).then(setRaw);
    clear();
  }, [model, version.version]);

  function clear() {
    const context = canvas.current?.getContext('2d');
    if (context === undefined || context === null) return;
    context.fillStyle = '#000';
    context.fillRect(0, 0, canvas.current!.width, canvas.current!.height);
    preview.current?.getContext('2d')?.clearRect(0, 0, 28, 28);
    setProbabilities(undefined);
    setHeatmap(undefined);
    setExplainNote(undefined);
  }

  const point = (event: PointerEvent) => {
    const rectangle = canvas.current!.getBoundingClientRect();
    return { x: ((event.clientX - rectangle.left) / rectangle.width) * canvas.current!.width, y: ((event.clientY - rectangle.top) / rectangle.height) * canvas.current!.height };
  };
  const stroke = (from: { x: number; y: number }, to: { x: number; y: number }) => {
    const context = canvas.current!.getContext('2d')!;
    context.strokeStyle = '#fff';
    context.fillStyle = '#fff';
    context.lineWidth = 22;
    context.lineCap = 'round';
    context.lineJoin = 'round';
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
  };
  const down = (event: PointerEvent) => {
    event.preventDefault();
    canvas.current!.setPointerCapture(event.pointerId);
    drawing.current = true;
    last.current = point(event);
    stroke(last.current, last.current);
  };
  const move = (event: PointerEvent) => {
    if (!drawing.current) return;
    const next = point(event);
    stroke(last.current ?? next, next);
    last.current = next;
  };
  const up = () => {
    if (!drawing.current) return;
    drawing.current = false;
    void predict();
  };

  async function predict() {
    const pixels = mnistPixels(canvas.current!);
    if (pixels === undefined) {
      setError('Draw something first.');
      return;
    }
    drawPreview(preview.current!, pixels);
    setBusy(true);
    setError(undefined);
    try {
      const rawPixels = raw ?? (await takesRawPixels(model, version.version));
      const data = Array.from(pixels, (value) => (rawPixels ? value : value / 255));
      const predicted = softmaxIfNeeded(await infer(model, version.version, input, data));
      setProbabilities(predicted);
      void explain(data, predicted.indexOf(Math.max(...predicted)));
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  }

  async function explain(data: number[], target: number) {
    setExplaining(true);
    setExplainNote(undefined);
    try {
      const image = await explainAsImage(model, version.version, input, data, target);
      setHeatmap({ url: URL.createObjectURL(image), target });
    } catch (failure) {
      setHeatmap(undefined);
      setExplainNote(`No explanation: ${describeError(failure)}`);
    } finally {
      setExplaining(false);
    }
  }

  const labels = (probabilities ?? []).map((_value, index) => classNames?.[index] ?? String(index));
  return (
    <div class="try-grid">
      <div class="card">
        <h2 id="draw-title">Draw</h2>
        <p class="muted small" id="draw-help">
          Draw one digit or garment, large and centred, with the mouse, a pen or a finger. It is scaled to 28×28 the way MNIST was (fitted into 20×20, centred by mass).
        </p>
        <canvas
          ref={canvas}
          id="drawing"
          class="drawing"
          width={280}
          height={280}
          aria-labelledby="draw-title"
          aria-describedby="draw-help"
          onPointerDown={down}
          onPointerMove={move}
          onPointerUp={up}
          onPointerCancel={up}
        />
        <div class="actions">
          <button type="button" class="secondary" onClick={clear} id="clear-drawing">
            Clear
          </button>
          <button type="button" onClick={() => void predict()} disabled={busy} id="predict">
            Predict
          </button>
          <figure class="preview">
            <canvas ref={preview} width={28} height={28} id="preview" aria-label="What the model sees, 28 by 28 pixels" />
            <figcaption class="small muted">28×28 input</figcaption>
          </figure>
        </div>
      </div>
      <div class="card" aria-live="polite">
        <h2>Prediction</h2>
        <ErrorNotice>{error}</ErrorNotice>
        {probabilities === undefined ? (
          <p class="muted">Draw, then release: the probabilities of each class appear here.</p>
        ) : (
          <ClassifierAnswer labels={labels} probabilities={probabilities} />
        )}
        {explaining && (
          <p class="muted small" role="status">
            Explaining the prediction…
          </p>
        )}
        {heatmap !== undefined && (
          <figure class="heatmap">
            <img src={heatmap.url} id="heatmap" width={224} height={224} alt={`Integrated-gradients heat map for class ${labels[heatmap.target] ?? heatmap.target}: red pixels raised its score, blue ones lowered it`} />
            <figcaption class="small muted">
              Why <strong>{labels[heatmap.target] ?? heatmap.target}</strong>: integrated gradients over the 28×28 input. Red raised the score, blue lowered it.
            </figcaption>
          </figure>
        )}
        {explainNote !== undefined && <p class="muted small">{explainNote}</p>}
      </div>
    </div>
  );
}

function TabularForm({ model, version }: { model: string; version: Version }) {
  const input = version.signature.inputs![0]!;
  const count = sampleShape(input)![0]!;
  const names = namesOf(version, 'featureNames');
  const classNames = namesOf(version, 'classNames');
  const [values, setValues] = useState<string[]>(() => Array.from({ length: count }, () => '0'));
  const [outputs, setOutputs] = useState<number[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      setOutputs(await infer(model, version.version, input, values.map(Number)));
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  const isClassifier = outputs !== undefined && outputs.length > 1;
  const shown = outputs === undefined ? [] : isClassifier ? softmaxIfNeeded(outputs) : outputs;
  return (
    <div class="try-grid">
      <form class="card" onSubmit={submit} id="tabular-form">
        <h2>Features</h2>
        <div class="form-grid">
          {values.map((value, index) => (
            <div class="field" key={index}>
              <label for={`feature-${index}`}>{names?.[index] ?? `feature ${index + 1}`}</label>
              <input
                id={`feature-${index}`}
                type="number"
                step="any"
                required
                value={value}
                onInput={(event) => {
                  const next = [...values];
                  next[index] = event.currentTarget.value;
                  setValues(next);
                }}
              />
            </div>
          ))}
        </div>
        <button type="submit">Predict</button>
      </form>
      <div class="card" aria-live="polite">
        <h2>Prediction</h2>
        <ErrorNotice>{error}</ErrorNotice>
        {outputs === undefined && <p class="muted">Fill in the features and press Predict.</p>}
        {isClassifier && <ClassifierAnswer labels={shown.map((_value, index) => classNames?.[index] ?? String(index))} probabilities={shown} />}
        {outputs !== undefined && !isClassifier && (
          <p class="prediction" id="prediction">
            <strong>{outputs.map((value) => formatNumber(value)).join(', ')}</strong>
          </p>
        )}
      </div>
    </div>
  );
}

interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

function ChatPlayground({ model, version }: { model: string; version: Version }) {
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [system, setSystem] = useState('You are a helpful assistant.');
  const [temperature, setTemperature] = useState('0.7');
  const [maxTokens, setMaxTokens] = useState('256');
  const [draft, setDraft] = useState('');
  const [streaming, setStreaming] = useState<AbortController | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const send = async (event: Event) => {
    event.preventDefault();
    if (draft.trim() === '') return;
    const history: ChatMessage[] = [...messages, { role: 'user', content: draft.trim() }];
    setMessages([...history, { role: 'assistant', content: '' }]);
    setDraft('');
    setError(undefined);
    const controller = new AbortController();
    setStreaming(controller);
    let answer = '';
    try {
      const response = await request('/v1/chat/completions', {
        method: 'POST',
        signal: controller.signal,
        accept: 'text/event-stream',
        body: { model: `${model}@${version.version}`, stream: true, temperature: Number(temperature), max_tokens: Number(maxTokens), messages: [...(system.trim() === '' ? [] : [{ role: 'system', content: system }]), ...history] },
      });
      await readEventStream(response, (message) => {
        if (message.data === '[DONE]') return;
        const chunk = JSON.parse(message.data) as { choices?: { delta?: { content?: string } }[] };
        answer += chunk.choices?.[0]?.delta?.content ?? '';
        setMessages([...history, { role: 'assistant', content: answer }]);
      });
    } catch (failure) {
      if (!controller.signal.aborted) setError(describeError(failure));
    } finally {
      setStreaming(undefined);
    }
  };
  return (
    <div class="card chat">
      <div class="form-grid chat-settings">
        <div class="field">
          <label for="chat-system">System prompt</label>
          <input id="chat-system" value={system} onInput={(event) => setSystem(event.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="chat-temperature">Temperature</label>
          <input id="chat-temperature" type="number" min={0} max={2} step={0.1} value={temperature} onInput={(event) => setTemperature(event.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="chat-max-tokens">Max tokens</label>
          <input id="chat-max-tokens" type="number" min={1} step={1} value={maxTokens} onInput={(event) => setMaxTokens(event.currentTarget.value)} />
        </div>
      </div>
      <ol class="messages" aria-live="polite" id="chat-messages" data-streaming={streaming !== undefined}>
        {messages.map((message, index) => (
          <li key={index} class={`message ${message.role}`}>
            <span class="visually-hidden">{message.role}: </span>
            {message.content || (streaming !== undefined ? '…' : '')}
          </li>
        ))}
      </ol>
      <ErrorNotice>{error}</ErrorNotice>
      <form class="chat-input" onSubmit={send}>
        <label for="chat-draft" class="visually-hidden">
          Message
        </label>
        <textarea
          id="chat-draft"
          rows={2}
          placeholder="Ask something… (Enter sends, Shift+Enter adds a line)"
          value={draft}
          onInput={(event) => setDraft(event.currentTarget.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && !event.shiftKey) {
              event.preventDefault();
              event.currentTarget.form?.requestSubmit();
            }
          }}
        />
        {streaming === undefined ? (
          <button type="submit">Send</button>
        ) : (
          <button type="button" class="secondary" onClick={() => streaming.abort()}>
            Stop
          </button>
        )}
      </form>
    </div>
  );
}

function Chooser({ model, version }: { model: string | undefined; version: string | undefined }) {
  const models = useApi<{ models: Model[] }>('/api/v1/models');
  const list = (models.data?.models ?? []).filter((entry) => entry.versions.length > 0);
  const selected = list.find((entry) => entry.name === model);
  return (
    <div class="filters">
      <label for="try-model">Model</label>
      <select
        id="try-model"
        value={model ?? ''}
        onChange={(event) => {
          const next = list.find((entry) => entry.name === event.currentTarget.value);
          if (next !== undefined) navigate(`/try/${encodeURIComponent(next.name)}/${next.versions[next.versions.length - 1]}`);
        }}
      >
        <option value="" disabled>
          choose a model
        </option>
        {list.map((entry) => (
          <option key={entry.name} value={entry.name}>
            {entry.name}
          </option>
        ))}
      </select>
      {selected !== undefined && (
        <>
          <label for="try-version">Version</label>
          <select id="try-version" value={version} onChange={(event) => navigate(`/try/${encodeURIComponent(selected.name)}/${event.currentTarget.value}`)}>
            {[...selected.versions].reverse().map((number) => (
              <option key={number} value={number}>
                {number}
                {selected.aliases
                  .filter((alias) => alias.version === number)
                  .map((alias) => ` (${alias.name})`)
                  .join('')}
              </option>
            ))}
          </select>
        </>
      )}
      <ErrorNotice>{models.error}</ErrorNotice>
    </div>
  );
}

export function TryPage({ model, version }: { model: string | undefined; version: string | undefined }) {
  const loaded = useApi<Version>(model === undefined || version === undefined ? undefined : `/api/v1/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}`);
  const current = loaded.data;
  const kind = current === undefined ? undefined : kindOf(current);
  return (
    <section>
      <PageHeader title="Try it" />
      <Chooser model={model} version={version} />
      {model === undefined && <p class="muted">Choose a model to call it from here: draw for image models, fill a form for tabular ones, chat with language models.</p>}
      <ErrorNotice>{loaded.error}</ErrorNotice>
      {loaded.loading && current === undefined && <Loading what="the version" />}
      {current !== undefined && kind === 'image' && <DrawingPad model={current.model} version={current} />}
      {current !== undefined && kind === 'tabular' && <TabularForm key={current.id} model={current.model} version={current} />}
      {current !== undefined && kind === 'chat' && <ChatPlayground key={current.id} model={current.model} version={current} />}
      {current !== undefined && kind === 'unsupported' && (
        <p class="notice">
          This version's inputs ({(current.signature.inputs ?? []).map((input) => `${input.name} [${input.shape.join(', ')}]`).join('; ')}) have no form here yet. Call it with the V2 API; see{' '}
          <a href={href(`/models/${encodeURIComponent(current.model)}`)}>its signature</a>.
        </p>
      )}
    </section>
  );
}
