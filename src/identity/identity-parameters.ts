/**
 * The identity-selection parameters of a class (the Azure provider's names), as identity
 * resolution reads them. Owned here: a provider parses its class into this shape and passes it on.
 */
export interface IdentityParameters {
  usePodIdentity: boolean;
  useVMManagedIdentity: boolean;
  userAssignedIdentityID: string;
  clientID: string;
  /** AKS identity binding: exchange the pod's token for `clientID` through the node's token proxy. */
  useAzureTokenProxy: boolean;
}
