/** asl-validator ships no types: the part of its API the template test uses. */
declare module 'asl-validator' {
  interface Result {
    isValid: boolean;
    errors: { 'Error code': string; Message: string }[];
    errorsText(separator?: string): string;
  }
  export default function aslValidator(definition: unknown, options?: { checkPaths?: boolean; checkArn?: boolean }): Result;
}
