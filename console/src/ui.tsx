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

/** A force stop asks first: what it will interrupt, then confirm or cancel. */
export const ConfirmForce = ({ question, onConfirm, onCancel }: { question: string; onConfirm: () => void; onCancel: () => void }) => (
  <div class="confirm" role="alertdialog" aria-label="Confirm force stop">
    <p>{question}</p>
    <button type="button" class="danger" onClick={onConfirm}>
      Confirm force stop
    </button>{' '}
    <button type="button" onClick={onCancel}>
      Cancel
    </button>
  </div>
);
