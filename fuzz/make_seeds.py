#!/usr/bin/env python3
"""fuzz/make_seeds.py - writes the seed inputs of the fuzz targets added for
issue 13 into fuzz/corpus/<target>/seed_* (run from the repository root).

Seeds are real inputs: checksum files from sha256sum/md5sum, manifests of
real files, receipts in receipt_encode's format, AWS files as the AWS CLI
documents them, and, with MOTO=http://127.0.0.1:PORT (a running
`moto_server -p PORT`), S3's replies as moto sends them (ListObjectsV2,
ListParts, ListMultipartUploads, InitiateMultipartUpload, error bodies).
The audit seeds come from fuzz_audit built with -DSLUICE_FUZZ_SEEDGEN
(fuzz/README.md); the stateful SFTP seeds from fuzz/fuzz_sftpseq.c's own
comment. libFuzzer's -merge=1 later keeps what adds coverage.
"""
import hashlib, json, os, subprocess, tempfile, urllib.error, urllib.parse, urllib.request

def put(target, name, data):
    d = os.path.join('fuzz/corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed_' + name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def completion():
    tmp = tempfile.mkdtemp()
    files = {'data.csv': b'id,amount\n1,10.00\n', 'b c.pgp': bytes(range(256)) + b'-----END PGP MESSAGE-----\n',
             'sub/x.txt': b'', 'back\\slash.csv': b'x\n'}
    for n, b in files.items():
        os.makedirs(os.path.dirname(os.path.join(tmp, n)), exist_ok=True)
        open(os.path.join(tmp, n), 'wb').write(b)
    names = sorted(files)
    run = lambda *a: subprocess.run(a, cwd=tmp, capture_output=True).stdout
    put('completion', 'sha256sum', b'\1' + run('sha256sum', *names))
    put('completion', 'sha256sum_one', b'\1' + run('sha256sum', 'data.csv'))
    put('completion', 'sha256sum_binary', b'\1' + run('sha256sum', '-b', *names))
    put('completion', 'sha256sum_tag', b'\1' + run('sha256sum', '--tag', *names))
    put('completion', 'md5sum', b'\2' + run('md5sum', *names))
    put('completion', 'md5sum_tag', b'\2' + run('md5sum', '--tag', 'data.csv'))
    put('completion', 'bare', b'\1' + hashlib.sha256(files['data.csv']).hexdigest().encode() + b'\n')
    put('completion', 'crlf', b'\3' + run('sha256sum', *names).replace(b'\n', b'\r\n'))
    m = '# batch 2026-01-01\n\n' + ''.join('%s %d %s\n' % (hashlib.sha256(b).hexdigest(), len(b), n)
                                          for n, b in sorted(files.items()))
    put('completion', 'manifest', b'\0' + m.encode())
    put('completion', 'manifest_tabs', b'\4' + m.replace(' ', '\t', 2).encode())
    put('completion', 'manifest_dup', b'\0' + (m + m.splitlines(True)[2]).encode())

def receipts():
    base = {'v': 1, 'fid': '4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99', 'partner': 'acme',
            'path': 'in/2026/pay ments-\u00e9.csv.pgp', 'remote': '192.0.2.10',
            'session': '0a1b2c3d4e5f60718293a4b5c6d7e8f9', 'size': 1048576,
            'sha256': hashlib.sha256(b'x').hexdigest(), 'received_ms': 1767225600123,
            'landing_dev': 64769, 'landing_ino': 1311234}
    put('receipt', 'full', json.dumps(base, separators=(',', ':')))
    put('receipt', 'minimal', json.dumps({k: base[k] for k in ('v', 'fid', 'partner', 'path', 'sha256', 'size', 'received_ms')}))
    put('receipt', 'escaped', json.dumps(dict(base, path='in/a\\"b\u0001.csv')))
    put('receipt', 'dotdot', json.dumps(dict(base, path='../etc/passwd')))
    put('receipt', 'v2', json.dumps(dict(base, v=2)))

def awsfiles():
    cred = ('[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n'
            'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\n'
            '[prod]\naws_access_key_id=ASIAXXXXEXAMPLE\naws_secret_access_key=secret\n'
            'aws_session_token = FwoGZXIvYXdzEXAMPLE//token==\n')
    conf = ('[default]\nregion = eu-west-1\noutput = json\n\n'
            '[profile prod]\nrole_arn = arn:aws:iam::123456789012:role/sluice\n'
            'source_profile = default\nrole_session_name = gw1\nexternal_id = x-1\n'
            'duration_seconds = 3600\nregion = eu-central-1\n'
            '; a comment\n# another\n[profile proc]\n'
            "credential_process = /opt/bin/get-creds --profile \"prod x\" 'a b' c\\ d\n")
    put('awsfiles', 'both', cred + '\0' + conf)
    put('awsfiles', 'conf_only', conf)
    put('awsfiles', 'proc_default', '\0[default]\ncredential_process = "/usr/bin/aws-vault" exec prod --json\n')
    put('awsfiles', 'crlf', (cred + '\0' + conf).replace('\n', '\r\n'))
    put('awsfiles', 'web_identity', '\0[profile prod]\nweb_identity_token_file = /var/run/token\nrole_arn = arn:aws:iam::1:role/r\n')

def bans():
    now = 1700000000
    t = {'version': 2, 'saved': now,
         'addresses': [{'key': '192.0.2.1', 'ban_until': now + 600, 'bans': 1, 'last': now - 5,
                    'fails': [now - 30, now - 20, now - 5]},
                   {'key': '2001:db8:1:2::/64', 'ban_until': 0, 'bans': 0, 'last': now - 1,
                    'fails': [now - 1]}],
         'users': [{'key': 'acme', 'prefix': '192.0.2.1', 'ban_until': now + 1200, 'bans': 2,
                    'last': now - 2, 'fails': [now - 2, now - 3]},
                   {'key': 'gone', 'prefix': '198.51.100.7', 'ban_until': now + 60, 'bans': 1,
                    'last': now, 'fails': []}]}
    put('bans', 'v2', json.dumps(t, indent=1))
    put('bans', 'v1', json.dumps({'version': 1, 'addresses': t['addresses'],
                                  'users': [{'key': 'acme', 'ban_until': now + 5, 'bans': 1, 'last': now, 'fails': []}]}))
    put('bans', 'empty', '{"version":2,"addresses":[],"users":[]}\n')

def s3(moto):
    def call(method, path, body=None):
        req = urllib.request.Request(moto + path, data=body, method=method,
                                     headers={'Content-Type': 'application/octet-stream'})
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
    call('PUT', '/fuzzseeds')
    for k in ('in/a.csv', 'in/a&b <c> "q".csv', 'in/r\u00e9sum\u00e9.pgp', 'in/sub/x'):
        call('PUT', '/fuzzseeds/' + urllib.parse.quote(k), b'hello')
    _, b = call('GET', '/fuzzseeds?list-type=2&prefix=in/')
    put('s3list', 'list', b'\1' + b)
    _, b = call('GET', '/fuzzseeds?list-type=2&max-keys=2&encoding-type=url')
    put('s3list', 'list_truncated', b'\1' + b)
    _, b = call('GET', '/fuzzseeds?list-type=2&prefix=none/')
    put('s3list', 'list_empty', b'\0' + b)
    # s3xml (fuzz_s3xml.c): a mode byte, then replies: status index
    # (0: 200, 6: 400, 8: 404, 14: 503), header flags, 16-bit length, body
    def rep(st, fl, body=b''):
        return bytes([st, fl]) + len(body).to_bytes(2, 'big') + body
    _, init = call('POST', '/fuzzseeds/in/big.bin?uploads=')
    uid = init.split(b'<UploadId>')[1].split(b'</UploadId>')[0].decode()
    call('PUT', '/fuzzseeds/in/big.bin?partNumber=1&uploadId=' + uid, b'x' * 5242880)
    call('PUT', '/fuzzseeds/in/big.bin?partNumber=2&uploadId=' + uid, b'y' * 10)
    _, parts = call('GET', '/fuzzseeds/in/big.bin?uploadId=' + uid)
    _, done = call('POST', '/fuzzseeds/in/big.bin?uploadId=' + uid,
                   b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>' +
                   parts.split(b'<ETag>')[1].split(b'</ETag>')[0] + b'</ETag></Part><Part><PartNumber>2</PartNumber><ETag>' +
                   parts.split(b'<ETag>')[2].split(b'</ETag>')[0] + b'</ETag></Part></CompleteMultipartUpload>')
    call('POST', '/fuzzseeds/in/a%26b.bin?uploads=')
    call('POST', '/fuzzseeds/kept?uploads=')
    _, ups = call('GET', '/fuzzseeds?uploads=')
    _, nsb = call('GET', '/nosuchbucket-fz?list-type=2')
    _, nsu = call('GET', '/fuzzseeds/in/big.bin?uploadId=nope')
    put('s3list', 'error', b'\0' + nsu)
    put('s3xml', 'put_ok', b'\0' + rep(8, 0) + rep(0, 1 | 2 | 32) + rep(0, 1 | 8 | 16))
    put('s3xml', 'put_nosuchbucket', b'\0' + rep(8, 0) + rep(8, 32, nsb))
    put('s3xml', 'put_slowdown', b'\0' + rep(8, 0) + rep(14, 0, b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>'))
    put('s3xml', 'mp_fresh', b'\2' + rep(8, 0) + rep(0, 0, init) + rep(0, 1) + rep(0, 1) + rep(0, 0, done) + rep(0, 1 | 2))
    put('s3xml', 'mp_resume', b'\1' + rep(8, 0) + rep(0, 0, parts) + rep(0, 1) + rep(0, 0, done) + rep(0, 1))
    put('s3xml', 'mp_nosuchupload', b'\1' + rep(8, 0) + rep(8, 0, nsu) + rep(0, 0, init) + rep(0, 1) + rep(0, 1) + rep(8, 0, nsu))
    put('s3xml', 'sweep', b'\3' + rep(0, 0, ups) + rep(4, 0) + rep(4, 0) + rep(4, 0))
    put('s3xml', 'sweep_error', b'\3' + rep(7, 0, nsb))

completion(); receipts(); awsfiles(); bans()
if os.environ.get('MOTO'):
    s3(os.environ['MOTO'])
