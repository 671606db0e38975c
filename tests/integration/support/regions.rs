//! What each region of a world holds, read directly (no proxy, no mount): the bytes of
//! an object, whether any region holds it.

use futures::StreamExt;

use super::world::World;

/// The whole object `key` in `region`, or None when the region does not hold it.
pub async fn object_in(world: &World, region: &str, key: &str) -> Option<Vec<u8>> {
    let store = world.raw_store(region);
    let mut object = store
        .get_object(&world.buckets[region], key, None, None)
        .await
        .ok()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = object.body.next().await {
        bytes.extend_from_slice(&chunk.expect("object body"));
    }
    Some(bytes)
}

/// Whether some region holds `key`.
pub async fn in_any_region(world: &World, key: &str) -> bool {
    for (region, bucket) in &world.buckets {
        if world
            .raw_store(region)
            .head_object(bucket, key)
            .await
            .is_ok()
        {
            return true;
        }
    }
    false
}
