import type { FieldResult } from './secret-fields.js';

/** Messages between the driver and its field-extraction worker thread (structured-clone data only). */
export interface FieldJob {
  id: number;
  text: string;
  paths: string[];
  maxBytes: number;
}

/** `fields` absent: the value is neither JSON nor YAML. */
export interface FieldAnswer {
  id: number;
  fields?: FieldResult[];
}
