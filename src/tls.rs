//! TLS client settings for `wss://`, built with rustls and an explicit
//! `ring` provider: a library loaded into an unknown host process must never
//! depend on, or install, a process-wide default provider.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::options::TlsOptions;
use crate::status::{Error, ErrorKind, Result};

/// What a `wss://` connection needs: the shared config and the name to
/// verify (a DNS name, or an IP address checked against IP SANs).
#[derive(Clone)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trust roots, loaded once; Mozilla's (webpki-roots) when the
/// system has none (a minimal container, say).
fn default_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(roots)
        })
        .clone()
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

fn add_pem_roots(roots: &mut RootCertStore, pem: &[u8], source: &str) -> Result<()> {
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| invalid(format!("bad PEM in {source}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("bad CA certificate in {source}: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(invalid(format!("no certificate found in {source}")));
    }
    Ok(())
}

/// Accepts any certificate for any name, but still checks that the peer
/// owns the key it presents. Only for `insecure_skip_verify`.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn build_config(options: &TlsOptions) -> Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("TLS setup: {e}")))?;
    let builder = if options.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let mut roots = (*default_roots()).clone();
        for path in &options.ca_files {
            let pem = std::fs::read(path)
                .map_err(|e| invalid(format!("cannot read CA file {path:?}: {e}")))?;
            add_pem_roots(&mut roots, &pem, &format!("CA file {path:?}"))?;
        }
        for pem in &options.ca_pems {
            add_pem_roots(&mut roots, pem.as_bytes(), "CA PEM text")?;
        }
        builder.with_root_certificates(roots)
    };
    let config = match &options.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert_path, key_path)) => {
            let certs: Vec<_> = CertificateDer::pem_file_iter(cert_path)
                .and_then(|certs| certs.collect::<std::result::Result<_, _>>())
                .map_err(|e| {
                    invalid(format!("cannot read client certificate {cert_path:?}: {e}"))
                })?;
            if certs.is_empty() {
                return Err(invalid(format!("no certificate in {cert_path:?}")));
            }
            let key = PrivateKeyDer::from_pem_file(key_path)
                .map_err(|e| invalid(format!("cannot read client key {key_path:?}: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| invalid(format!("client certificate and key do not match: {e}")))?
        }
    };
    Ok(Arc::new(config))
}

/// The TLS settings for one `wss://` socket. Default options share one
/// config; custom ones read their files now, on the caller's thread, so a
/// bad CA file is a synchronous error and the IO thread never reads files.
/// The trust settings for `options`: files are read here, on the caller's
/// thread. The default settings are built once per process.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>> {
    static DEFAULT: OnceLock<Result<Arc<ClientConfig>>> = OnceLock::new();
    if options.is_default() {
        DEFAULT.get_or_init(|| build_config(options)).clone()
    } else {
        build_config(options)
    }
}

/// TLS for one server name with prepared settings.
pub fn client_tls(config: Arc<ClientConfig>, host: &str) -> Result<ClientTls> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidUrl,
            format!("{host:?} is not a valid TLS server name: {e}"),
        )
    })?;
    Ok(ClientTls { config, name })
}

/// A readable account of a TLS failure carried in an I/O error, if it is one.
/// A TLS failure that is the server's certificate being rejected (as
/// opposed to the transport failing).
pub fn is_certificate_failure(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
}

pub fn describe_failure(error: &std::io::Error, host: &str) -> Option<String> {
    let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match tls {
        rustls::Error::InvalidCertificate(cert) => {
            let why = match cert {
                CertificateError::UnknownIssuer => {
                    "it is signed by an unknown authority (add its CA with ws_options_set_ca_file)"
                        .to_owned()
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "it has expired".to_owned()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "it is not valid yet".to_owned()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!("it is not valid for {host:?}")
                }
                CertificateError::Revoked => "it was revoked".to_owned(),
                other => format!("{other:?}"),
            };
            format!("TLS: the server's certificate was rejected: {why} ({tls})")
        }
        other => format!("TLS: {other}"),
    })
}
