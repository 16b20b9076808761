/** The bench's baseline: a bare Fastify route answering a constant body of a given size. */
import Fastify from 'fastify';

const body = process.env.BARE_BODY ?? '{}';
const app = Fastify({ logger: false });
app.post('/infer', async (_request, reply) => reply.header('content-type', 'application/json').send(body));
const url = await app.listen({ host: '127.0.0.1', port: Number(process.env.BARE_PORT ?? 0) });
process.stdout.write(`${url}\n`);
