import { describe, expect, it } from 'vitest';
import { parseAzureParameters } from '../src/providers/azure/parameters.js';
import { objectsParameter } from './support/harness.js';

/** Classes exactly as users of the upstream Azure provider write them must parse the same way. */
describe('Azure provider parameters', () => {
  const upstreamStyle = {
    usePodIdentity: 'false',
    keyvaultName: ' kvname ',
    cloudName: '',
    tenantId: ' tid-1 ',
    objects: `array:
  - |
    objectName: secret1
    objectType: secret              # object types: secret, key or cert
    objectVersion: ""               # default to latest if empty
  - |
    objectName: secret2
    objectType: secret
    objectVersion: ""
    objectAlias: "SECRET_2"
  - |
    objectName: key1
    objectType: key
    objectAlias: ""
    filePermission: "0600"
`,
  };

  it('parses the documented upstream example: trims strings, empty alias means none, default mode 0644', () => {
    const p = parseAzureParameters(upstreamStyle);
    expect(p.vaultUrl).toBe('https://kvname.vault.azure.net');
    expect(p.tenantId).toBe('tid-1');
    expect(p.cloud.name).toBe('AzurePublicCloud');
    expect(p.objects.map((o) => [o.fileName, o.objectType, o.mode.toString(8)])).toEqual([
      ['secret1', 'secret', '644'],
      ['SECRET_2', 'secret', '644'],
      ['key1', 'key', '600'],
    ]);
    expect(p.objects[0]?.objectEncoding).toBe('utf-8');
  });

  it('prefers tenantID over tenantId, as the Azure provider does', () => {
    expect(parseAzureParameters({ ...upstreamStyle, tenantID: 'new-id' }).tenantId).toBe('new-id');
  });

  it.each([
    ['AzureUSGovernmentCloud', 'https://kvname.vault.usgovcloudapi.net'],
    ['azurechinacloud', 'https://kvname.vault.azure.cn'],
  ])('maps cloudName %s to its vault domain', (cloudName, url) => {
    expect(parseAzureParameters({ ...upstreamStyle, cloudName }).vaultUrl).toBe(url);
  });

  it('lets vaultUri win over keyvaultName and cloud', () => {
    const p = parseAzureParameters({ ...upstreamStyle, vaultUri: 'https://kv.privatelink.example:8443/' });
    expect(p.vaultUrl).toBe('https://kv.privatelink.example:8443');
    expect(p.vaultUrlExplicit).toBe(true);
  });

  it('accepts the identity parameters with strconv.ParseBool spellings', () => {
    const p = parseAzureParameters({ ...upstreamStyle, usePodIdentity: 'True', userAssignedIdentityID: ' abc ' });
    expect(p.identity).toEqual({ usePodIdentity: true, useVMManagedIdentity: false, userAssignedIdentityID: 'abc', clientID: '' });
    expect(() => parseAzureParameters({ ...upstreamStyle, useVMManagedIdentity: 'yes' })).toThrow(/useVMManagedIdentity must be "true" or "false"/);
  });

  it('accepts aliases with sub-directories and case-insensitive encodings and formats', () => {
    const p = parseAzureParameters({
      tenantId: 't',
      keyvaultName: 'abc',
      objects: objectsParameter([{ objectName: 'a', objectAlias: 'dir/sub/a.txt', objectEncoding: 'Base64', objectFormat: 'PFX' }]),
    });
    expect(p.objects[0]).toMatchObject({ fileName: 'dir/sub/a.txt', objectEncoding: 'base64', objectFormat: 'pfx' });
  });

  it.each([
    [{ objectName: 'k', objectType: 'key', objectEncoding: 'hex' }, /objectEncoding is only supported for objectType secret/],
    [{ objectName: 'k', objectType: 'cert', objectFormat: 'pfx' }, /objectFormat pfx is only supported for objectType secret/],
    [{ objectName: 'bad name' }, /objects\[0\] \(bad name\): field objectName must be 1-127 letters, digits or dashes/],
    [{ objectType: 'secret' }, /objects\[0\]: field objectName is required/],
    [{ objectName: 'x', objectVersion: '../1' }, /field objectVersion must be a version id/],
    [{ objectName: 'x', filePermission: '4755' }, /must not set setuid/],
  ])('refuses %j naming object and field', (object, message) => {
    expect(() => parseAzureParameters({ tenantId: 't', keyvaultName: 'abc', objects: objectsParameter([object as { objectName: string }]) })).toThrow(message);
  });
});
