/** The web console's routes: a redirect, the app's page, and its built files. */
import { Type } from '@sinclair/typebox';
import { NoBody, type RouteSchema } from './common.ts';

const page = Type.String({ description: "The console's index.html (client routes answer it too)" });
const notBuilt = { content: { 'text/html': { schema: Type.String({ description: 'The console is not built: run npm run build' }) } } };
const file = (description: string) => ({ schema: Type.String({ description }) });

export const consoleSchemas = {
  root: { response: { 302: NoBody } },
  page: {
    response: {
      200: {
        content: {
          'text/html': { schema: page },
          'text/javascript': file('A script of the console (hashed name under assets/)'),
          'text/css': file('A stylesheet of the console'),
          'image/svg+xml': file('An image of the console'),
          'image/png': file('An image of the console'),
          'image/x-icon': file('The icon'),
          'application/json': file('A source map or manifest'),
          'font/woff2': file('A font'),
          'text/plain': file('A text file'),
        },
      },
      503: notBuilt,
    },
  },
} satisfies Record<string, RouteSchema>;
