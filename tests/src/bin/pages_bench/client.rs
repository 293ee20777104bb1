//! A minimal HTTP/1.1 client over one keep-alive connection: the time of a request is from
//! writing it to reading the last byte of the body, with nothing else in between (no pool, no
//! decompression, no redirects followed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// One connection to the server.
pub(crate) struct Client {
    address: String,
    reader: BufReader<TcpStream>,
    cookie: Option<String>,
}

/// An answer.
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// Header lines, lower-cased names.
    pub(crate) headers: Vec<(String, String)>,
    /// The body as text.
    pub(crate) body: String,
    /// From writing the request to the last byte of the body.
    pub(crate) elapsed: Duration,
}

impl Client {
    /// Connects to `127.0.0.1:port`.
    pub(crate) fn connect(port: u16) -> anyhow::Result<Client> {
        let address = format!("127.0.0.1:{port}");
        let stream = TcpStream::connect(&address).context("connect to the server")?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Client {
            address,
            reader: BufReader::new(stream),
            cookie: None,
        })
    }

    /// Sends the session cookie with every later request.
    pub(crate) fn set_cookie(&mut self, cookie: String) {
        self.cookie = Some(cookie);
    }

    /// `GET path`.
    pub(crate) fn get(&mut self, path: &str) -> anyhow::Result<Response> {
        self.send("GET", path, None)
    }

    /// `POST path` with a form body.
    pub(crate) fn post_form(&mut self, path: &str, form: &str) -> anyhow::Result<Response> {
        self.send("POST", path, Some(form))
    }

    /// `PATCH path` with a JSON body and a bearer token (an API write; no session cookie).
    pub(crate) fn patch_json(
        &mut self,
        path: &str,
        token: &str,
        json: &str,
    ) -> anyhow::Result<Response> {
        let request = format!(
            "PATCH {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            self.address,
            json.len()
        );
        self.exchange(&request)
    }

    fn send(&mut self, method: &str, path: &str, form: Option<&str>) -> anyhow::Result<Response> {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.address);
        if let Some(cookie) = &self.cookie {
            request.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if let Some(body) = form {
            request.push_str(&format!(
                "Origin: http://{}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                self.address,
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        self.exchange(&request)
    }

    /// Writes `request` and reads the whole answer, timing both.
    fn exchange(&mut self, request: &str) -> anyhow::Result<Response> {
        let started = Instant::now();
        self.reader.get_mut().write_all(request.as_bytes())?;
        let (status, headers) = self.head()?;
        let body = self.body(&headers)?;
        let elapsed = started.elapsed();
        Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            elapsed,
        })
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("the server closed the connection");
        }
        Ok(line.trim_end().to_owned())
    }

    fn head(&mut self) -> anyhow::Result<(u16, Vec<(String, String)>)> {
        let status_line = self.line()?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        Ok((status, headers))
    }

    fn body(&mut self, headers: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(length) = header("content-length") {
            let mut body = vec![0; length.parse()?];
            self.reader.read_exact(&mut body)?;
            return Ok(body);
        }
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let size = usize::from_str_radix(self.line()?.split(';').next().unwrap_or(""), 16)?;
                if size == 0 {
                    // Trailers end with an empty line.
                    while !self.line()?.is_empty() {}
                    return Ok(body);
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                self.line()?;
            }
        }
        bail!("a response without a length: {headers:?}")
    }
}
