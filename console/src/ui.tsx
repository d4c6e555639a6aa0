import type { ComponentChildren } from 'preact';
import type { AgentStatus } from './api.js';

export const StatusBadge = ({ status }: { status: AgentStatus }) => <span class={`badge badge-${status}`}>{status}</span>;

/** The API's sentence, announced to screen readers as it appears. */
export const ErrorLine = ({ text }: { text?: string | undefined }) =>
  text ? (
    <p class="error" role="alert">
      {text}
    </p>
  ) : null;

export const Section = ({ title, children, label }: { title: string; children: ComponentChildren; label?: string }) => (
  <section aria-label={label ?? title}>
    <h2>{title}</h2>
    {children}
  </section>
);

export const TableHead = ({ columns }: { columns: string[] }) => (
  <thead>
    <tr>
      {columns.map((c) => (
        <th key={c} scope="col">
          {c}
        </th>
      ))}
    </tr>
  </thead>
);
