import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'reports/', '.stryker-tmp/', 'clients/typescript/dist/', 'cdk.out/', 'cdk.out.*/', '.data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', fetch: 'readonly', performance: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', NodeJS: 'readonly', RequestInit: 'readonly', Headers: 'readonly', URLSearchParams: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.property.name='only'][callee.object.name=/^(it|describe|test)$/]", message: 'Focused tests hide the rest of the suite.' },
        { selector: "CallExpression[callee.property.name='skip'][callee.object.name=/^(it|describe|test)$/]", message: 'A skipped test proves nothing.' },
      ],
    },
  },
  {
    // The domain knows neither AWS nor HTTP: it reaches DynamoDB, Step Functions, EventBridge and
    // the runtimes only through its ports (functions/agents/ports.ts), bound in functions/adapters.
    files: ['functions/agents/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@aws-sdk/*', 'aws-lambda', '@middy/*'], message: 'The domain knows no AWS SDK, Lambda event or middy: use a port.' },
            { group: ['../http/*', '../workflow/*', '../scheduled/*'], message: 'The domain knows no entry point (HTTP, workflow, schedule).' },
            { group: ['../adapters/*', '../adapters/**'], message: 'The domain imports no adapter, not even as a type: declare what it needs in ports.ts, and have the adapter implement it.' },
          ],
        },
      ],
    },
  },
  {
    // One concern per function: a reader holds a whole function, comments included, in view.
    files: ['functions/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 60, IIFEs: true }] },
  },
  {
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
