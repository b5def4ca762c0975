import { describe, expect, it } from 'vitest';
import { PodvaultError } from '../src/errors/podvault-error.js';
import { MAX_CLASS_TENANTS, parseAzureParameters } from '../src/providers/azure/parameters.js';
import { DEFAULT_FETCH_LIMITS } from '../src/providers/fetch-limits.js';
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

  it('reads an unquoted filePermission (0755, as the provider\'s getting-started page writes it) as the octal text written', () => {
    const objects = (permission: string) => `array:
  - |
    objectName: secret1
    objectType: secret
    filePermission: ${permission}
`;
    const mode = (permission: string) => parseAzureParameters({ ...upstreamStyle, objects: objects(permission) }).objects[0]?.mode.toString(8);
    // YAML 1.2 reads 0755 as decimal 755 and 1.1 as octal 493: neither is taken, the text is.
    expect(mode('0755')).toBe('755');
    expect(mode('0600')).toBe('600');
    expect(mode('644')).toBe('644');
    expect(mode('"0440"')).toBe('440');
    // Entries written as mappings in the outer YAML too.
    expect(parseAzureParameters({ ...upstreamStyle, objects: 'array:\n  - objectName: s\n    objectType: secret\n    filePermission: 0750\n' }).objects[0]?.mode.toString(8)).toBe('750');
    // A number that is not octal digits as written is still refused, naming the field.
    for (const bad of ['0x1ed', '0o755', '755.0', '0999']) expect(() => mode(bad)).toThrow(/objects\[0\] \(secret1\): field filePermission must be an octal mode/);
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
    expect(p.identity).toEqual({ usePodIdentity: true, useVMManagedIdentity: false, userAssignedIdentityID: 'abc', clientID: '', useAzureTokenProxy: false });
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

/** Several vaults in one class (Azure provider issue #1088). */
describe('Azure provider parameters: an object\'s own vault and tenant', () => {
  it('takes each object\'s keyvaultName, vaultUri and tenantId/tenantID over the class\'s, in the class\'s cloud', () => {
    const p = parseAzureParameters({
      tenantId: 't-class',
      keyvaultName: 'classvault',
      cloudName: 'AzureChinaCloud',
      objects: objectsParameter([
        { objectName: 'a' },
        { objectName: 'b', keyvaultName: 'OtherVault', tenantId: 't-b' },
        { objectName: 'c', vaultUri: 'https://kv.example:8443/', keyvaultName: 'ignored', tenantId: 'old', tenantID: 't-c' },
        { objectName: 'd', keyvaultName: 'classvault' },
      ]),
    });
    expect(p.objects.map((o) => o.vault)).toEqual([
      { url: 'https://classvault.vault.azure.cn', explicit: false, tenantId: 't-class', source: 'parameter keyvaultName', own: false },
      { url: 'https://othervault.vault.azure.cn', explicit: false, tenantId: 't-b', source: 'objects[1] (b): field keyvaultName', own: true },
      { url: 'https://kv.example:8443', explicit: true, tenantId: 't-c', source: 'objects[2] (c): field vaultUri', own: true },
      { url: 'https://classvault.vault.azure.cn', explicit: false, tenantId: 't-class', source: 'objects[3] (d): field keyvaultName', own: false },
    ]);
  });

  it('needs the class\'s vault and tenant only for objects without their own', () => {
    const own = { objectName: 'a', keyvaultName: 'vault-a', tenantId: 't-a' };
    const p = parseAzureParameters({ objects: objectsParameter([own]) });
    expect(p.vaultUrl).toBeUndefined();
    expect(p.objects[0]?.vault.url).toBe('https://vault-a.vault.azure.net');
    expect(() => parseAzureParameters({ tenantId: 't', objects: objectsParameter([own, { objectName: 'b' }]) })).toThrow('parameter keyvaultName is required (or vaultUri): objects[1] (b) names no vault of its own');
    expect(() => parseAzureParameters({ keyvaultName: 'abc', objects: objectsParameter([own, { objectName: 'b' }]) })).toThrow('parameter tenantId is required (objects[1] (b) names no tenantId of its own)');
  });

  it.each([
    [{ objectName: 'x', keyvaultName: 'a_b' }, 'objects[0] (x): field keyvaultName "a_b" must be 3-24 letters, digits or dashes'],
    [{ objectName: 'x', vaultUri: 'http://kv.example' }, 'objects[0] (x): field vaultUri must be an https:// URL'],
    [{ objectName: 'x', vaultUri: 'https://kv.example/path' }, 'objects[0] (x): field vaultUri must be the vault origin only (https://host[:port]), without path, query or credentials'],
    [{ objectName: 'x', tenantID: 'a b' }, 'objects[0] (x): field tenantID must be a tenant id (GUID) or domain name'],
  ])('refuses %j naming object and field', (object, message) => {
    expect(() => parseAzureParameters({ tenantId: 't', keyvaultName: 'abc', objects: objectsParameter([object]) })).toThrow(message);
  });

  it('still refuses one file name used by objects of two vaults', () => {
    const objects = objectsParameter([{ objectName: 'x' }, { objectName: 'x', keyvaultName: 'other' }]);
    expect(() => parseAzureParameters({ tenantId: 't', keyvaultName: 'abc', objects })).toThrow('objects[1] (x): file name "x" is already used by objects[0]; set objectAlias');
  });

  it('bounds the distinct tenants of a class before any identity is resolved', () => {
    const objects = objectsParameter(Array.from({ length: MAX_CLASS_TENANTS + 1 }, (_, i) => ({ objectName: `o${i}`, tenantId: `t${i}` })));
    expect(() => parseAzureParameters({ keyvaultName: 'abc', objects }, { where: 'SecretProviderClass default/app' })).toThrow(
      `SecretProviderClass default/app: its objects name ${MAX_CLASS_TENANTS + 1} tenants, over the limit of ${MAX_CLASS_TENANTS} tenants per class`,
    );
  });
});

/** A class is a tenant's text: its size and object count are bounded before it is parsed. */
describe('Azure provider parameters: class limits', () => {
  const limits = { ...DEFAULT_FETCH_LIMITS, maxClassBytes: 4096, maxObjects: 3 };
  const where = 'SecretProviderClass team-a/app';
  const aliases = (n: number) => objectsParameter(Array.from({ length: n }, (_, i) => ({ objectName: 'big', objectAlias: `a${i}` })));
  const invalid = (fn: () => unknown): PodvaultError => {
    try {
      fn();
    } catch (err) {
      if (err instanceof PodvaultError) return err;
      throw err;
    }
    throw new Error('expected a PodvaultError');
  };

  it('refuses parameters over --max-class-size before parsing them, naming class, size, limit and flag', () => {
    // Not YAML at all: a parse would fail differently, so the size check must come first.
    const err = invalid(() => parseAzureParameters({ tenantId: 't', keyvaultName: 'abc', objects: `{${'x'.repeat(5000)}` }, { limits, where }));
    expect(err.kind).toBe('invalid-argument');
    expect(err.message).toMatch(/^SecretProviderClass team-a\/app: spec.parameters hold 50\d\d bytes, over the limit of 4096 bytes \(--max-class-size\)$/);
  });

  it('counts every parameter and multi-byte characters as UTF-8 bytes', () => {
    const err = invalid(() => parseAzureParameters({ tenantId: 't', keyvaultName: 'abc', objects: aliases(1), note: '€'.repeat(1400) }, { limits, where }));
    expect(err.message).toMatch(/over the limit of 4096 bytes \(--max-class-size\)/);
  });

  it('refuses more objects than --max-class-objects before parsing any entry', () => {
    expect(parseAzureParameters({ tenantId: 't', keyvaultName: 'abc', objects: aliases(3) }, { limits, where }).objects).toHaveLength(3);
    const err = invalid(() => parseAzureParameters({ tenantId: 't', keyvaultName: 'abc', objects: `array:\n${'  - "{"\n'.repeat(4)}` }, { limits, where }));
    expect(err.kind).toBe('invalid-argument');
    expect(err.message).toBe('SecretProviderClass team-a/app: 4 objects, over the limit of 3 objects per class (--max-class-objects)');
  });

  it('refuses an objectVersionHistory over --max-class-objects before any version is listed', () => {
    const objects = objectsParameter([{ objectName: 'x', objectVersionHistory: '4' }]);
    const err = invalid(() => parseAzureParameters({ tenantId: 't', keyvaultName: 'abc', objects }, { limits, where }));
    expect(err.message).toBe('SecretProviderClass team-a/app: objects[0] (x): field objectVersionHistory 4 is over the limit of 3 objects per class (--max-class-objects)');
  });

  it('the 12,000-alias class of the finding is refused by the default limits', () => {
    const objects = aliases(12_000);
    expect(objects.length).toBeGreaterThan(DEFAULT_FETCH_LIMITS.maxClassBytes);
    const err = invalid(() => parseAzureParameters({ tenantId: 't', keyvaultName: 'abc', objects }, { where }));
    expect(err.message).toMatch(/over the limit of 65536 bytes \(--max-class-size\)/);
  });
});
