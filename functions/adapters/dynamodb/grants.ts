import { DynamoDBServiceException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * What a function may do to each table. Declared once per function (routes in
 * functions/http/routes.ts, the others below): the CDK stack grants from it, and the local stack
 * builds each function's DynamoDB client from it, so a call outside the grant fails locally as it
 * fails deployed.
 */
export type Access = 'none' | 'read' | 'write';

export interface TableAccess {
  agents: Access;
  records: Access;
}

/** The functions that are not routes: the workflows' tasks, the message worker, the reaper. */
export const functionAccess = {
  CheckDrain: { agents: 'read', records: 'none' },
  FinalizeStop: { agents: 'write', records: 'write' },
  RecordStopFailure: { agents: 'write', records: 'none' },
  FleetStopStep: { agents: 'write', records: 'write' },
  MessageWorker: { agents: 'write', records: 'write' },
  Reaper: { agents: 'write', records: 'write' },
} as const satisfies Record<string, TableAccess>;

/** The actions `grantReadData` allows (CDK's DynamoDB read actions that the handlers can send). */
const READ_ACTIONS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'ConditionCheckItem', 'DescribeTable', 'TransactGetItems']);
/** ...and `grantReadWriteData` adds these. */
const WRITE_ACTIONS = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);

/** The IAM action and tables of one command, as IAM evaluates it (a transaction: each item's own action). */
function actionsOf(command: { constructor: { name: string }; input: Record<string, unknown> }): { action: string; table: string }[] {
  // lib-dynamodb's GetCommand is DynamoDB's GetItem, and so on; client-dynamodb's names are the action's.
  const base = command.constructor.name.replace(/Command$/, '');
  const action = ({ Get: 'GetItem', Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', BatchGet: 'BatchGetItem', BatchWrite: 'BatchWriteItem', TransactWrite: 'TransactWriteItems', TransactGet: 'TransactGetItems' } as Record<string, string>)[base] ?? base;
  const input = command.input;
  if (action === 'TransactWriteItems' || action === 'TransactGetItems') {
    const items = (input.TransactItems ?? []) as Record<string, { TableName: string }>[];
    return items.flatMap((item) =>
      Object.entries(item).map(([kind, op]) => ({ action: kind === 'ConditionCheck' ? 'ConditionCheckItem' : `${kind}Item`, table: op.TableName })),
    );
  }
  if (action === 'BatchGetItem' || action === 'BatchWriteItem') {
    return Object.keys((input.RequestItems ?? {}) as object).map((table) => ({ action, table }));
  }
  return [{ action, table: String(input.TableName) }];
}

/**
 * DynamoDB's refusal of a call the role does not allow, as the SDK surfaces it deployed: a client
 * error named AccessDeniedException (not retried, and not a 503: it is a bug in the function).
 */
export class AccessDenied extends DynamoDBServiceException {
  constructor(action: string, table: string, fn: string) {
    super({
      name: 'AccessDeniedException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
      message: `User: ${fn} is not authorized to perform: dynamodb:${action} on resource: table/${table} because no identity-based policy allows the dynamodb:${action} action`,
    });
  }
}

/**
 * The client a function runs with: every call checked against what it declares for each table
 * (by name) before it is sent; a table it declares nothing for is refused like a table of another
 * stack. Only `send` and `destroy` are used by the stores.
 */
export function grantedClient(db: DynamoDBDocumentClient, tables: { agents?: string; records?: string }, access: TableAccess, fn: string): DynamoDBDocumentClient {
  const allowed = (action: string, table: string) => {
    const level = table === tables.agents ? access.agents : table === tables.records ? access.records : 'none';
    if (level === 'write') return READ_ACTIONS.has(action) || WRITE_ACTIONS.has(action);
    if (level === 'read') return READ_ACTIONS.has(action);
    return false;
  };
  const send = ((command: Parameters<DynamoDBDocumentClient['send']>[0]) => {
    for (const { action, table } of actionsOf(command as never)) {
      if (!allowed(action, table)) return Promise.reject(new AccessDenied(action, table, fn));
    }
    return db.send(command as never);
  }) as DynamoDBDocumentClient['send'];
  return new Proxy(db, {
    get: (target, property, receiver) => (property === 'send' ? send : Reflect.get(target, property, receiver)),
  });
}
