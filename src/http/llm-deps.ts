/**
 * The OpenAI and Ollama routes' dependencies over the real registry and model manager: every
 * resolution checks the `inference` permission, scopes to the caller's tenant and its key's model
 * allow-list (outside it: MODEL_NOT_FOUND, like a missing model), and serves only language models.
 */
import type { FastifyRequest } from 'fastify';
import type { AiaasConfig } from '../config.ts';
import type { ModelKey, ModelManager } from '../inference/model-manager.ts';
import type { LanguageModelVersion, ModelRegistry } from '../platform/model-registry.ts';
import type { QuotaService } from '../billing/quotas.ts';
import { modelAllowed } from '../security/roles.ts';
import { AiaasError } from '../errors.ts';
import { authorize, authorizeModel } from './auth.ts';
import { nameServedVersion } from './served-version.ts';
import type { Metrics } from './metrics.ts';
import type { UsageMeter } from './usage-metering.ts';
import type { LanguageModelDeps, LanguageModelEntry } from './protocols/llm-support.ts';

export interface LanguageModelDepsOptions {
  registry: ModelRegistry;
  manager: ModelManager;
  usage: UsageMeter;
  metrics: Metrics;
  config: Pick<AiaasConfig, 'llmDefaultMaxTokens' | 'llmMaxTokens' | 'llmContextLength' | 'llmMaxContextLength' | 'modelIdleUnloadMs'>;
  now: () => Date;
  /** Plans: token reservations and the plan's max_tokens and context limits. */
  quotas?: Pick<QuotaService, 'admit' | 'planOf'>;
}

function toEntry(version: LanguageModelVersion): LanguageModelEntry {
  const signature = version.signature;
  return {
    tenantId: version.tenantId,
    name: version.name,
    version: String(version.version),
    versionId: version.versionId,
    createdAt: new Date(version.createdAt),
    aliases: version.aliases,
    fileBytes: signature.fileBytes,
    sha256: `sha256:${signature.sha256}`,
    info: {
      architecture: signature.architecture,
      ...(signature.contextLength === null ? {} : { trainedContextLength: signature.contextLength }),
      parameterCount: signature.parameterCount,
      quantization: signature.quantization,
      ...(version.chatTemplate === null ? {} : { chatTemplate: version.chatTemplate }),
      ...(signature.embeddingLength === null ? {} : { embeddingLength: signature.embeddingLength }),
    },
  };
}

function modelKeyOf(entry: LanguageModelEntry): ModelKey {
  return { versionId: entry.versionId, ...(entry.tenantId === undefined ? {} : { tenantId: entry.tenantId }), name: entry.name, version: entry.version };
}

export function languageModelDeps(options: LanguageModelDepsOptions): LanguageModelDeps {
  const { registry, manager, usage, metrics, config, quotas } = options;
  return {
    async resolve(request: FastifyRequest, name: string, selector?: string) {
      const principal = authorize(request, 'inference');
      authorizeModel(request, name);
      const version = await registry.resolveLanguageModel(principal.tenantId, name, selector);
      nameServedVersion(request, String(version.version));
      return toEntry(version);
    },
    async list(request: FastifyRequest) {
      const principal = authorize(request, 'inference');
      const versions = await registry.listLanguageModels(principal.tenantId);
      return versions.filter((version) => modelAllowed(principal.allowedModels, version.name)).map(toEntry);
    },
    open: (entry) => manager.acquireLanguageModel(modelKeyOf(entry)),
    keepAlive: (entry, milliseconds) => manager.keepAlive(entry.versionId, milliseconds),
    async loaded(request: FastifyRequest) {
      const principal = authorize(request, 'inference');
      const result: Array<{ entry: LanguageModelEntry; memoryBytes: number; expiresAt?: Date }> = [];
      for (const loaded of manager.loaded()) {
        if (loaded.kind !== 'language' || loaded.key.tenantId !== principal.tenantId || loaded.key.name === undefined) continue;
        if (!modelAllowed(principal.allowedModels, loaded.key.name)) continue;
        const version = await registry.resolveLanguageModel(principal.tenantId, loaded.key.name, loaded.key.version).catch(() => undefined);
        if (version === undefined || version.versionId !== loaded.key.versionId) continue;
        result.push({
          entry: toEntry(version),
          memoryBytes: loaded.memoryBytes,
          ...((): { expiresAt?: Date } => {
            const expires = manager.expiresAt(loaded.key.versionId);
            return expires === undefined ? {} : { expiresAt: new Date(expires) };
          })(),
        });
      }
      return result;
    },
    limits(entry) {
      const trained = entry.info?.trainedContextLength ?? Number.POSITIVE_INFINITY;
      const planLimits = entry.tenantId === undefined ? undefined : quotas?.planOf(entry.tenantId)?.limits;
      const maxTokens = Math.min(config.llmMaxTokens, planLimits?.maxLlmTokens ?? Number.POSITIVE_INFINITY);
      return {
        defaultMaxTokens: Math.min(config.llmDefaultMaxTokens, maxTokens),
        maxTokens,
        // What each sequence really gets (see LlamaCppRuntime.open): the configured context, the trained one if smaller.
        maxContextLength: Math.min(config.llmContextLength, config.llmMaxContextLength, trained, planLimits?.maxLlmContext ?? Number.POSITIVE_INFINITY),
      };
    },
    ...(quotas === undefined
      ? {}
      : {
          admit: async (request: FastifyRequest, entry: LanguageModelEntry, reserve: { promptTokens: number; completionTokens: number }) => {
            const tenantId = entry.tenantId ?? authorize(request, 'inference').tenantId;
            const maxContext = quotas.planOf(tenantId)?.limits.maxLlmContext;
            if (maxContext !== undefined && reserve.promptTokens > maxContext) {
              throw new AiaasError('CONTEXT_LENGTH_EXCEEDED', `The prompt is about ${reserve.promptTokens} tokens; this tenant's plan allows a context of ${maxContext}`, {
                details: { promptTokens: reserve.promptTokens, maxContext },
              });
            }
            return quotas.admit(tenantId, reserve);
          },
        }),
    recordUsage(request, entry, used, outcome, call) {
      usage.generation(request, entry, call.protocol, { ...used, ...(call.computeMs === undefined ? {} : { computeMs: call.computeMs }) }, outcome);
    },
    recordStreamedBytes: (request, bytes) => usage.streamed(request, bytes),
    metrics,
    now: options.now,
  };
}
