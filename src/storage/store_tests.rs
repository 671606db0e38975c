//! The region stores of the unit tests: one that passes every call on to a real store,
//! with a hook that a test writes to fail chosen calls before they go through (a region
//! down, a permission refused, a hung request) or to act after they succeed (a peer's
//! write). Test code, named `_tests` as test code is.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;

use crate::storage::{
    CompletedPart, ObjectInfo, ObjectStream, ObjectSummary, PartChecks, PutOptions, RegionStore,
    StorageError,
};

/// Which operation a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    GetParameter,
    PutParameter,
    DeleteParameter,
    ListParameters,
    HeadObject,
    GetObject,
    PutObject,
    PutObjectFromFile,
    FirstPartSize,
    ListObjects,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
}

impl Op {
    /// Whether a success of the call leaves a whole object written.
    pub fn writes_object(self) -> bool {
        matches!(
            self,
            Op::PutObject | Op::PutObjectFromFile | Op::CompleteMultipartUpload
        )
    }
}

/// One call to the store: its operation, its bucket (none for parameters) and what it
/// names there (a parameter's name or path, an object's key or a prefix).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub op: Op,
    pub bucket: Option<&'a str>,
    pub name: &'a str,
}

impl<'a> Call<'a> {
    fn parameter(op: Op, name: &'a str) -> Self {
        Call {
            op,
            bucket: None,
            name,
        }
    }

    fn object(op: Op, bucket: &'a str, key: &'a str) -> Self {
        Call {
            op,
            bucket: Some(bucket),
            name: key,
        }
    }
}

/// What a test does around the calls to a `Hooked` store.
#[async_trait]
pub trait Hook: Send + Sync + std::fmt::Debug {
    /// Before `call` goes through: an error is its answer, and the inner store is not
    /// asked.
    async fn before(&self, _call: Call<'_>) -> Result<(), StorageError> {
        Ok(())
    }

    /// After `call` went through with success, given the inner store.
    async fn after(&self, _inner: &dyn RegionStore, _call: Call<'_>) {}
}

/// `inner`, every call of it passed through `hook`.
#[derive(Debug)]
pub struct Hooked<S, H> {
    pub inner: S,
    pub hook: H,
}

impl<S: RegionStore, H: Hook> Hooked<S, H> {
    pub fn new(inner: S, hook: H) -> Self {
        Hooked { inner, hook }
    }

    /// `answer` (the inner store's), with the hook asked before and told after.
    async fn around<T>(
        &self,
        call: Call<'_>,
        answer: impl std::future::Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        self.hook.before(call).await?;
        let value = answer.await?;
        self.hook.after(&self.inner, call).await;
        Ok(value)
    }
}

#[async_trait]
impl<S: RegionStore, H: Hook> RegionStore for Hooked<S, H> {
    fn region(&self) -> &str {
        self.inner.region()
    }
    fn s3_endpoint(&self) -> Option<&str> {
        self.inner.s3_endpoint()
    }
    fn server_name(&self) -> Option<String> {
        self.inner.server_name()
    }
    async fn get_parameter(&self, name: &str) -> Result<String, StorageError> {
        let call = Call::parameter(Op::GetParameter, name);
        self.around(call, self.inner.get_parameter(name)).await
    }
    async fn put_parameter(&self, name: &str, value: &str) -> Result<(), StorageError> {
        let call = Call::parameter(Op::PutParameter, name);
        self.around(call, self.inner.put_parameter(name, value))
            .await
    }
    async fn delete_parameter(&self, name: &str) -> Result<(), StorageError> {
        let call = Call::parameter(Op::DeleteParameter, name);
        self.around(call, self.inner.delete_parameter(name)).await
    }
    async fn list_parameters(&self, path: &str) -> Result<Vec<(String, String)>, StorageError> {
        let call = Call::parameter(Op::ListParameters, path);
        self.around(call, self.inner.list_parameters(path)).await
    }
    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StorageError> {
        let call = Call::object(Op::HeadObject, bucket, key);
        self.around(call, self.inner.head_object(bucket, key)).await
    }
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> Result<ObjectStream, StorageError> {
        let call = Call::object(Op::GetObject, bucket, key);
        let answer = self.inner.get_object(bucket, key, range, if_match);
        self.around(call, answer).await
    }
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<(), StorageError> {
        let call = Call::object(Op::PutObject, bucket, key);
        let answer = self.inner.put_object(bucket, key, body, options);
        self.around(call, answer).await
    }
    async fn put_object_from_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> Result<(), StorageError> {
        let call = Call::object(Op::PutObjectFromFile, bucket, key);
        let answer = self.inner.put_object_from_file(bucket, key, path, options);
        self.around(call, answer).await
    }
    async fn first_part_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, StorageError> {
        let call = Call::object(Op::FirstPartSize, bucket, key);
        self.around(call, self.inner.first_part_size(bucket, key))
            .await
    }
    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectSummary>, StorageError> {
        let call = Call::object(Op::ListObjects, bucket, prefix);
        self.around(call, self.inner.list_objects(bucket, prefix))
            .await
    }
    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), StorageError> {
        let call = Call::object(Op::DeleteObject, bucket, key);
        let answer = self.inner.delete_object(bucket, key, if_match);
        self.around(call, answer).await
    }
    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        user_metadata: &HashMap<String, String>,
        full_crc64: bool,
    ) -> Result<String, StorageError> {
        let call = Call::object(Op::CreateMultipartUpload, bucket, key);
        let answer = self
            .inner
            .create_multipart_upload(bucket, key, user_metadata, full_crc64);
        self.around(call, answer).await
    }
    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
        checks: &PartChecks,
    ) -> Result<CompletedPart, StorageError> {
        let call = Call::object(Op::UploadPart, bucket, key);
        let answer = self
            .inner
            .upload_part(bucket, key, upload_id, part_number, body, checks);
        self.around(call, answer).await
    }
    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        if_none_match: bool,
        crc64: Option<u64>,
    ) -> Result<(), StorageError> {
        let call = Call::object(Op::CompleteMultipartUpload, bucket, key);
        let answer = self.inner.complete_multipart_upload(
            bucket,
            key,
            upload_id,
            parts,
            if_none_match,
            crc64,
        );
        self.around(call, answer).await
    }
    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        let call = Call::object(Op::AbortMultipartUpload, bucket, key);
        let answer = self.inner.abort_multipart_upload(bucket, key, upload_id);
        self.around(call, answer).await
    }
}
