//! Reading an uploaded file from a multipart body, shared by the API and the web UI, with the
//! size limit enforced while streaming so an oversized upload is refused before it is buffered.

use axum::extract::multipart::{Field, Multipart, MultipartError};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};

use crate::error::AppError;

/// The file part of an upload plus the plain text fields sent beside it.
pub struct UploadForm {
    pub file: Option<UploadedFile>,
    pub fields: Vec<(String, String)>,
}

pub struct UploadedFile {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

fn multipart_error(error: MultipartError) -> AppError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge(format!("the upload is too large: {}", error.body_text()))
    } else {
        AppError::BadRequest(format!(
            "the multipart body could not be read: {}",
            error.body_text()
        ))
    }
}

async fn read_limited(
    mut field: Field<'_>,
    limit: usize,
    filename: &str,
) -> Result<Bytes, AppError> {
    let mut buffer = BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buffer.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge(format!(
                "{filename} is larger than the upload limit of {limit} bytes"
            )));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// Reads every part: the part named `file_field` is the file, other parts are short text fields.
pub async fn read_upload(
    mut multipart: Multipart,
    file_field: &str,
    limit: usize,
) -> Result<UploadForm, AppError> {
    let mut form = UploadForm {
        file: None,
        fields: Vec::new(),
    };
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == file_field {
            if form.file.is_some() {
                return Err(AppError::BadRequest(format!(
                    "send one file per upload; the form has more than one {file_field:?} part"
                )));
            }
            let filename = field.file_name().unwrap_or_default().to_string();
            let content_type = field.content_type().map(str::to_string);
            let bytes = read_limited(field, limit, &filename).await?;
            form.file = Some(UploadedFile {
                filename,
                content_type,
                bytes,
            });
        } else {
            let value = read_limited(field, 64 * 1024, &name).await?;
            let text = String::from_utf8(value.to_vec()).map_err(|_| {
                AppError::BadRequest(format!("form field {name:?} is not UTF-8 text"))
            })?;
            form.fields.push((name, text));
        }
    }
    Ok(form)
}

impl UploadForm {
    /// The file part, or a 400 naming the field the client should have sent.
    pub fn require_file(self, file_field: &str) -> Result<UploadedFile, AppError> {
        self.file.ok_or_else(|| {
            AppError::BadRequest(format!(
                "the upload has no file: send it as a multipart/form-data part named {file_field:?}"
            ))
        })
    }
}
