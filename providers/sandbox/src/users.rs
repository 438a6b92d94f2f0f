//! Stable per-user profile data, derived from (platform, sandbox user name).

use crate::util::{base36, display_name, stable_u64};
use crate::{Platform, UserInfo};

/// Instagram professional account id (`user_id`): always above 2^53 and odd, so an f64
/// round-trip visibly corrupts it.
pub(crate) fn instagram_user_id(user: &str) -> u64 {
    17_841_400_000_000_001 + 2 * (stable_u64("instagram", user, "user_id") % 1_000_000_000)
}

/// Instagram app-scoped id (`id` on `/me`).
pub(crate) fn instagram_app_scoped_id(user: &str) -> String {
    (9_000_000_000_000_000 + stable_u64("instagram", user, "id") % 900_000_000_000_000).to_string()
}

pub(crate) fn tiktok_open_id(user: &str) -> String {
    format!(
        "-000{}",
        &hex::encode(stable_u64("tiktok", user, "open_id").to_be_bytes())[..14]
    )
}

pub(crate) fn reddit_id(user: &str) -> String {
    base36(36u64.pow(4) + stable_u64("reddit", user, "id") % (36u64.pow(6) - 36u64.pow(4)))
}

pub(crate) fn onlyfans_id(user: &str) -> String {
    (100_000 + stable_u64("onlyfans", user, "id") % 900_000_000).to_string()
}

fn count(p: &str, user: &str, what: &str, max: u64) -> u64 {
    stable_u64(p, user, what) % max
}

/// The avatar URL the sandbox serves for a user.
pub(crate) fn avatar_url(base: &str, p: Platform, user: &str) -> String {
    format!("{base}/_sandbox/avatar/{}/{user}.svg", p.as_str())
}

/// Summary of a sandbox user on a platform (what a provider would store).
pub(crate) fn user_info(base: &str, p: Platform, user: &str) -> UserInfo {
    let account_id = match p {
        Platform::Instagram => instagram_user_id(user).to_string(),
        Platform::TikTok => tiktok_open_id(user),
        Platform::Reddit => reddit_id(user),
        Platform::OnlyFans => onlyfans_id(user),
    };
    UserInfo {
        platform: p,
        user: user.to_owned(),
        account_id,
        username: user.to_owned(),
        display_name: display_name(user),
        avatar_url: avatar_url(base, p, user),
        followers: count(p.as_str(), user, "followers", 100_000),
    }
}

/// Every field `GET /me` can return for an Instagram user.
pub(crate) fn instagram_fields(
    base: &str,
    user: &str,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    let mut m = serde_json::Map::new();
    m.insert("id".into(), json!(instagram_app_scoped_id(user)));
    m.insert("user_id".into(), json!(instagram_user_id(user).to_string()));
    m.insert("username".into(), json!(user));
    m.insert("name".into(), json!(display_name(user)));
    let business = stable_u64("instagram", user, "type").is_multiple_of(2);
    m.insert(
        "account_type".into(),
        json!(if business {
            "BUSINESS"
        } else {
            "MEDIA_CREATOR"
        }),
    );
    m.insert(
        "profile_picture_url".into(),
        json!(avatar_url(base, Platform::Instagram, user)),
    );
    m.insert(
        "followers_count".into(),
        json!(count("instagram", user, "followers", 100_000)),
    );
    m.insert(
        "follows_count".into(),
        json!(count("instagram", user, "follows", 2_000)),
    );
    m.insert(
        "media_count".into(),
        json!(count("instagram", user, "media", 500)),
    );
    m
}

/// Every TikTok user field with the scope that unlocks it.
pub(crate) fn tiktok_fields(
    base: &str,
    user: &str,
) -> Vec<(&'static str, &'static str, serde_json::Value)> {
    use serde_json::json;
    let avatar = avatar_url(base, Platform::TikTok, user);
    vec![
        ("open_id", "user.info.basic", json!(tiktok_open_id(user))),
        (
            "union_id",
            "user.info.basic",
            json!(hex::encode(
                stable_u64("tiktok", user, "union").to_be_bytes()
            )),
        ),
        ("avatar_url", "user.info.basic", json!(avatar)),
        (
            "avatar_url_100",
            "user.info.basic",
            json!(format!("{avatar}?size=100")),
        ),
        (
            "avatar_large_url",
            "user.info.basic",
            json!(format!("{avatar}?size=720")),
        ),
        ("display_name", "user.info.basic", json!(display_name(user))),
        (
            "bio_description",
            "user.info.profile",
            json!(format!("Sandbox account of {user}")),
        ),
        (
            "profile_deep_link",
            "user.info.profile",
            json!(format!("{base}/tiktok/www/@{user}")),
        ),
        (
            "is_verified",
            "user.info.profile",
            json!(stable_u64("tiktok", user, "verified").is_multiple_of(5)),
        ),
        ("username", "user.info.profile", json!(user)),
        (
            "follower_count",
            "user.info.stats",
            json!(count("tiktok", user, "followers", 100_000)),
        ),
        (
            "following_count",
            "user.info.stats",
            json!(count("tiktok", user, "following", 2_000)),
        ),
        (
            "likes_count",
            "user.info.stats",
            json!(count("tiktok", user, "likes", 1_000_000)),
        ),
        (
            "video_count",
            "user.info.stats",
            json!(count("tiktok", user, "videos", 300)),
        ),
    ]
}

/// Reddit `/api/v1/me` (a realistic subset). `icon_img` contains `&amp;` like the real one.
pub(crate) fn reddit_me(base: &str, user: &str) -> serde_json::Value {
    use serde_json::json;
    let link = count("reddit", user, "link_karma", 50_000) as i64;
    let comment = count("reddit", user, "comment_karma", 50_000) as i64;
    let sig = &hex::encode(stable_u64("reddit", user, "sig").to_be_bytes())[..12];
    let icon = format!(
        "{}?width=256&amp;height=256&amp;crop=256:256,smart&amp;s={sig}",
        avatar_url(base, Platform::Reddit, user)
    );
    let created = 1_262_304_000 + count("reddit", user, "created", 400_000_000) as i64;
    json!({
        "id": reddit_id(user),
        "name": user,
        "icon_img": icon,
        "snoovatar_img": "",
        "total_karma": link + comment,
        "link_karma": link,
        "comment_karma": comment,
        "awardee_karma": 0,
        "awarder_karma": 0,
        "created": created as f64,
        "created_utc": created as f64,
        "has_verified_email": true,
        "verified": true,
        "is_gold": false,
        "is_mod": false,
        "is_employee": false,
        "over_18": false,
        "pref_nightmode": false,
        "num_friends": 0,
        "subreddit": {
            "display_name": format!("u_{user}"),
            "display_name_prefixed": format!("u/{user}"),
            "title": "",
            "icon_img": icon,
            "url": format!("/user/{user}/"),
            "public_description": "",
            "subscribers": 0,
            "user_is_subscriber": false,
        },
    })
}

/// The gateway's `/v2/access/self` body.
pub(crate) fn onlyfans_self(base: &str, user: &str) -> serde_json::Value {
    // `GET /v2/access/self` as documented
    // (https://docs.ofauth.com/api-reference/self/get-current-user): `id` is a number.
    let id: u64 = onlyfans_id(user).parse().unwrap_or_default();
    serde_json::json!({
        "id": id,
        "username": user,
        "name": display_name(user),
        "isAuth": true,
        "isVerified": true,
        "avatar": avatar_url(base, Platform::OnlyFans, user),
        "subscribersCount": count("onlyfans", user, "subscribers", 50_000),
        "postsCount": count("onlyfans", user, "posts", 2_000),
        "photosCount": count("onlyfans", user, "photos", 5_000),
        "videosCount": count("onlyfans", user, "videos", 500),
    })
}

/// A small SVG avatar (initial on a colour derived from the user).
pub(crate) fn avatar_svg(p: Platform, user: &str) -> String {
    let hue = stable_u64(p.as_str(), user, "hue") % 360;
    let initial = user
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or('?');
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256"><rect width="256" height="256" fill="hsl({hue},60%,45%)"/><text x="128" y="160" font-size="120" text-anchor="middle" fill="#fff" font-family="sans-serif">{}</text><text x="128" y="240" font-size="18" text-anchor="middle" fill="#fff" font-family="sans-serif">sandbox</text></svg>"##,
        crate::util::html_escape(&initial.to_string())
    )
}
